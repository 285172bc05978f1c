// Alerts for the pipeline. Each one notifies the action group when one is given (actionGroupId).
// * failed invocations of the Event Hub trigger (Application Insights requests);
// * dead letters written (the app's OpenTelemetry metric ingest.dead_letters, in customMetrics);
// * unprocessed events: events arrive on the namespace but none are read (consumer stalled);
// * ADX ingestion failures (IngestionResult other than Success) and materialized view health.

param location string
param tags object
param namePrefix string
param applicationInsightsId string
param eventHubNamespaceId string
param eventHubName string
param adxClusterId string
param triggerFunctionName string

@description('Resource id of an action group to notify; empty: alerts fire without notifications.')
param actionGroupId string

var actions = empty(actionGroupId) ? [] : [actionGroupId]

resource failedInvocations 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${namePrefix}-failed-invocations'
  location: location
  tags: tags
  properties: {
    displayName: 'Ingest: failed function invocations'
    description: 'An ingest_apim_logs invocation failed: the trigger retry policy replays the batch; on the last attempt it is dead-lettered.'
    severity: 2
    enabled: true
    scopes: [
      applicationInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: 'requests | where operation_Name == "${triggerFunctionName}" and success == false'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actions
    }
  }
}

resource deadLetters 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${namePrefix}-dead-letters'
  location: location
  tags: tags
  properties: {
    displayName: 'Ingest: dead letters written'
    description: 'Records or batches went to IngestDeadLetters or the dead-letter container (metric ingest.dead_letters).'
    severity: 3
    enabled: true
    scopes: [
      applicationInsightsId
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT1H'
    criteria: {
      allOf: [
        {
          query: 'customMetrics | where name == "ingest.dead_letters" | summarize DeadLetters = sum(valueSum) by bin(timestamp, 15m)'
          timeAggregation: 'Total'
          metricMeasureColumn: 'DeadLetters'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actions
    }
  }
}

// Event Hubs exposes no per-consumer-group lag metric; events coming in while none go out for 15
// minutes means the app's consumer is stalled (misconfigured, failing, or scaled to nothing).
resource unprocessedEvents 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${namePrefix}-unprocessed-events'
  location: 'global'
  tags: tags
  properties: {
    description: 'Events arrive on the hub but none are read: the ingest consumer is stalled.'
    severity: 1
    enabled: true
    scopes: [
      eventHubNamespaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'incoming'
          metricName: 'IncomingMessages'
          metricNamespace: 'Microsoft.EventHub/namespaces'
          dimensions: [
            {
              name: 'EntityName'
              operator: 'Include'
              values: [
                eventHubName
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Total'
        }
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'outgoing'
          metricName: 'OutgoingMessages'
          metricNamespace: 'Microsoft.EventHub/namespaces'
          dimensions: [
            {
              name: 'EntityName'
              operator: 'Include'
              values: [
                eventHubName
              ]
            }
          ]
          operator: 'LessThan'
          threshold: 1
          timeAggregation: 'Total'
        }
      ]
    }
    autoMitigate: true
    actions: [
      for group in actions: {
        actionGroupId: group
      }
    ]
  }
}

resource adxIngestionFailures 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${namePrefix}-adx-ingestion-failures'
  location: 'global'
  tags: tags
  properties: {
    description: 'ADX reported failed ingestions (IngestionResult other than Success).'
    severity: 2
    enabled: true
    scopes: [
      adxClusterId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'failed-ingestions'
          metricName: 'IngestionResult'
          metricNamespace: 'Microsoft.Kusto/clusters'
          dimensions: [
            {
              name: 'IngestionResultDetails'
              operator: 'Exclude'
              values: [
                'Success'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Total'
        }
      ]
    }
    autoMitigate: true
    actions: [
      for group in actions: {
        actionGroupId: group
      }
    ]
  }
}

// MaterializedViewHealth is 1 when a view is healthy and 0 when it is not (e.g. lagging behind its source).
resource materializedViewHealth 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${namePrefix}-materialized-view-health'
  location: 'global'
  tags: tags
  properties: {
    description: 'A materialized view (dedup, hourly, daily, request health) is unhealthy.'
    severity: 2
    enabled: true
    scopes: [
      adxClusterId
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT30M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'unhealthy-views'
          metricName: 'MaterializedViewHealth'
          metricNamespace: 'Microsoft.Kusto/clusters'
          dimensions: [
            {
              name: 'MaterializedViewName'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'LessThan'
          threshold: 1
          timeAggregation: 'Average'
        }
      ]
    }
    autoMitigate: true
    actions: [
      for group in actions: {
        actionGroupId: group
      }
    ]
  }
}
