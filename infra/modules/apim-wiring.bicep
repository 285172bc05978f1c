// Wiring for an EXISTING API Management instance (deployed in its resource group):
// * a diagnostic setting streaming GatewayLogs and GatewayLlmLogs to the hub (APIM must be in the
//   hub's region: Azure Monitor streams only to event hubs in the monitored resource's region);
// * API-level Azure Monitor diagnostics for one API: request/response bodies (APIM logs at most
//   8192 bytes of a body) and LLM prompt/completion messages (largeLanguageModel);
// * optionally an Event Hub logger authenticated with APIM's managed identity, and a policy fragment
//   that writes one log-to-eventhub event per LLM call.

param apimName string

@description('Resource id of the namespace authorization rule (Manage, Send, Listen) the diagnostic setting streams with.')
param eventHubAuthorizationRuleId string
param eventHubName string
param eventHubFullyQualifiedNamespace string

@description('Resource id of the event hub (the logger links to it).')
param eventHubId string

@description('API id (the name in APIM, e.g. azure-openai) whose diagnostics log bodies and LLM messages; empty: none.')
param apiId string

@minValue(0)
@maxValue(8192)
param bodyBytes int

param logLlmMessages bool

@minValue(0)
param llmMessageMaxBytes int

param createEventHubLogger bool
param loggerName string
param policyFragmentName string

resource apim 'Microsoft.ApiManagement/service@2024-05-01' existing = {
  name: apimName
}

resource gatewayLogsToHub 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'gateway-logs-to-eventhub'
  scope: apim
  properties: {
    eventHubAuthorizationRuleId: eventHubAuthorizationRuleId
    eventHubName: eventHubName
    logs: [
      {
        category: 'GatewayLogs'
        enabled: true
      }
      {
        category: 'GatewayLlmLogs'
        enabled: true
      }
    ]
  }
}

resource azureMonitorLogger 'Microsoft.ApiManagement/service/loggers@2024-05-01' existing = {
  parent: apim
  name: 'azuremonitor'
}

resource api 'Microsoft.ApiManagement/service/apis@2024-05-01' existing = if (!empty(apiId)) {
  parent: apim
  name: empty(apiId) ? 'none' : apiId
}

var bodySettings = {
  body: {
    bytes: bodyBytes
  }
}

resource apiDiagnostics 'Microsoft.ApiManagement/service/apis/diagnostics@2024-10-01-preview' = if (!empty(apiId)) {
  parent: api
  name: 'azuremonitor'
  properties: {
    loggerId: azureMonitorLogger.id
    alwaysLog: 'allErrors'
    logClientIp: true
    verbosity: 'information'
    sampling: {
      samplingType: 'fixed'
      percentage: 100
    }
    frontend: {
      request: bodySettings
      response: bodySettings
    }
    backend: {
      request: bodySettings
      response: bodySettings
    }
    largeLanguageModel: {
      logs: logLlmMessages ? 'enabled' : 'disabled'
      requests: {
        messages: 'all'
        maxSizeInBytes: llmMessageMaxBytes
      }
      responses: {
        messages: 'all'
        maxSizeInBytes: llmMessageMaxBytes
      }
    }
  }
}

resource eventHubLogger 'Microsoft.ApiManagement/service/loggers@2024-05-01' = if (createEventHubLogger) {
  parent: apim
  name: loggerName
  properties: {
    loggerType: 'azureEventHub'
    description: 'LLM usage events for the APIM -> Event Hubs -> ADX pipeline (managed identity)'
    resourceId: eventHubId
    credentials: {
      name: eventHubName
      endpointAddress: eventHubFullyQualifiedNamespace
      identityClientId: 'SystemAssigned'
    }
  }
}

resource usageFragment 'Microsoft.ApiManagement/service/policyFragments@2024-05-01' = if (createEventHubLogger) {
  parent: apim
  name: policyFragmentName
  properties: {
    description: 'log-to-eventhub: one usage event per LLM call (fields mapped by schemas/log_to_eventhub.toml)'
    format: 'rawxml'
    value: replace(loadTextContent('../policies/llm-usage-to-eventhub.xml'), '__LOGGER_ID__', loggerName)
  }
  dependsOn: [
    eventHubLogger
  ]
}

// APIM's system-assigned identity sends to the hub when the logger is created (it must exist then).
output principalId string = createEventHubLogger ? apim.identity.principalId : ''
output apimId string = apim.id
