// Flex Consumption plan (FC1, Linux) and the Functions app: Python 3.11, deployment package in a blob
// container read with the user-assigned identity, per-function scale with one always-ready instance
// for the Event Hub trigger, and the app settings that ingest/config.py reads (exactly those).

param location string
param tags object
param planName string
param functionAppName string

@description('azd service name (azure.yaml) that deploys the code to this app.')
param serviceName string

param identityId string
param identityClientId string

param storageAccountName string
param storageBlobEndpoint string
param deploymentContainerName string

@allowed([
  2048
  4096
])
@description('Instance memory: a 256-event batch with 8 KB bodies fits in 2048 MB; 4096 doubles the CPU too.')
param instanceMemoryMB int

@minValue(1)
@maxValue(1000)
@description('Scale-out ceiling. Event Hubs gives at most one active reader per partition, so instances beyond the partition count idle.')
param maximumInstanceCount int

@minValue(0)
@description('Always-ready instances for the Event Hub trigger (0: scale from zero).')
param alwaysReadyInstances int

@description('Name of the Event Hub triggered function (function_app.py).')
param triggerFunctionName string

param applicationInsightsConnectionString string

param eventHubFullyQualifiedNamespace string
param eventHubName string
param consumerGroupName string

param adxClusterUri string
param adxIngestUri string
param adxDatabaseName string

@allowed([
  'queued'
  'streaming'
  'managed'
])
param adxIngestionMode string

@minValue(0)
param adxRetries int
param adxRetryBaseSeconds string
param deadLetterContainerName string

@allowed([
  'none'
  'redacted'
  'full'
])
param captureText string

@minValue(0)
param captureTextMaxChars int

@minValue(1024)
param deadLetterMaxBytes int
param estimateTokens bool

@description('Mapping file for log-to-eventhub payloads; empty: the packaged schemas/log_to_eventhub.toml.')
param policyMappingFile string

@description('Subnet for virtual network integration (outbound, delegated to Microsoft.App/environments); empty: none.')
param virtualNetworkSubnetId string = ''

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

// Flex Consumption names an always-ready group `http`, `blob` or `durable`, and any other function
// `function:<name>` (learn.microsoft.com/azure/azure-functions/flex-consumption-how-to).
var alwaysReadyTrigger = [
  {
    name: 'function:${triggerFunctionName}'
    instanceCount: alwaysReadyInstances
  }
]
var alwaysReady = alwaysReadyInstances > 0 ? alwaysReadyTrigger : []

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: functionAppName
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    // Private network: outbound traffic (Event Hubs, storage, ADX) leaves through the integration
    // subnet and resolves the private endpoints through the linked zones.
    virtualNetworkSubnetId: empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
        alwaysReady: alwaysReady
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// The contract with ingest/config.py (DEPLOYED_SETTINGS): tests/infra checks this set, name for name.
// Flex Consumption rejects FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION as app settings
// (functionAppConfig.runtime replaces them), so they are absent on purpose.
resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: {
    EventHubConnection__fullyQualifiedNamespace: eventHubFullyQualifiedNamespace
    EventHubConnection__credential: 'managedidentity'
    EventHubConnection__clientId: identityClientId
    EVENTHUB_NAME: eventHubName
    EVENTHUB_CONSUMER_GROUP: consumerGroupName
    AzureWebJobsStorage__accountName: storageAccountName
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identityClientId
    ADX_CLUSTER_URI: adxClusterUri
    ADX_INGEST_URI: adxIngestUri
    ADX_DATABASE: adxDatabaseName
    ADX_INGESTION_MODE: adxIngestionMode
    ADX_RETRIES: string(adxRetries)
    ADX_RETRY_BASE_SECONDS: adxRetryBaseSeconds
    AZURE_CLIENT_ID: identityClientId
    DEAD_LETTER_CONTAINER: deadLetterContainerName
    CAPTURE_TEXT: captureText
    CAPTURE_TEXT_MAX_CHARS: string(captureTextMaxChars)
    DEAD_LETTER_MAX_BYTES: string(deadLetterMaxBytes)
    ESTIMATE_TOKENS: estimateTokens ? 'true' : 'false'
    POLICY_MAPPING_FILE: policyMappingFile
    APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
    // The Python worker exports the app's logs and metrics to Application Insights with
    // OpenTelemetry (host.json telemetryMode), only from the `ingest` logger.
    PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY: 'true'
    PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME: 'ingest'
  }
}

output id string = site.id
output name string = site.name
output defaultHostName string = site.properties.defaultHostName
