// APIM gateway logs -> Event Hubs -> Azure Functions (Flex Consumption, Python 3.11) -> Azure Data Explorer.
// `azd up` takes an empty resource group to a running pipeline: monitoring, Event Hubs, storage, one
// user-assigned identity, the Functions app, its role assignments, ADX with the kusto/ scripts,
// optional APIM wiring and the origin design's APIM configuration, and alerts.
targetScope = 'resourceGroup'

@minLength(1)
@maxLength(64)
@description('azd environment name: part of every resource name.')
param environmentName string

@description('Region of every resource. APIM must be in this region for its diagnostic setting to stream to the hub.')
param location string = resourceGroup().location

@description('Object id of the user running azd (AZURE_PRINCIPAL_ID): ADX database admin, so the postprovision hook can seed. Empty: none.')
param principalId string = ''

@description('AZURE_PRINCIPAL_TYPE. A service principal is not added as ADX admin here (ADX names apps by client id, azd passes an object id): list it in adxAdminPrincipals.')
@allowed([
  'User'
  'ServicePrincipal'
])
param principalType string = 'User'

// ---------------------------------------------------------------- Event Hubs
@allowed([
  'Standard'
  'Premium'
])
@description('Event Hubs tier: Standard or higher (Basic has neither consumer groups of one\'s own nor Capture).')
param eventHubSku string = 'Standard'

@minValue(1)
@description('Throughput units (Standard) or processing units (Premium).')
param eventHubCapacity int = 1

param eventHubName string = 'apim-gateway-logs'

@minValue(1)
@maxValue(32)
param eventHubPartitionCount int = 4

@minValue(1)
@maxValue(90)
@description('Days Event Hubs keeps events (Standard allows up to 7).')
param eventHubMessageRetentionInDays int = 7

@description('The app\'s own consumer group (never $Default).')
param consumerGroupName string = 'apim-adx'

@description('Capture every event to Avro files in the storage account (backfill source).')
param captureEnabled bool = false
param captureContainerName string = 'eventhub-capture'

// ---------------------------------------------------------------- storage
param deadLetterContainerName string = 'ingest-deadletters'

@minValue(1)
param deadLetterCoolAfterDays int = 30

@minValue(1)
param deadLetterDeleteAfterDays int = 180

// ---------------------------------------------------------------- Functions app
@allowed([
  2048
  4096
])
param instanceMemoryMB int = 2048

@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@minValue(0)
param alwaysReadyInstances int = 1

@allowed([
  'none'
  'redacted'
  'full'
])
param captureText string = 'none'

@minValue(0)
param captureTextMaxChars int = 8192

@minValue(1024)
param deadLetterMaxBytes int = 65536

param estimateTokens bool = true

@description('Mapping file for log-to-eventhub payloads (a path inside the package); empty: schemas/log_to_eventhub.toml.')
param policyMappingFile string = ''

@minValue(0)
param adxRetries int = 3
param adxRetryBaseSeconds string = '1'

// ---------------------------------------------------------------- ADX
@description('Name of an existing ADX cluster in this resource group to use; empty: create one.')
param existingAdxClusterName string = ''

@description('Cluster SKU; the default is the dev/test SKU (no SLA, one node).')
param adxSkuName string = 'Dev(No SLA)_Standard_E2a_v4'

@allowed([
  'Basic'
  'Standard'
])
param adxSkuTier string = 'Basic'

@minValue(1)
param adxCapacity int = 1

param adxDatabaseName string = 'apimlogs'

@allowed([
  'queued'
  'streaming'
  'managed'
])
param adxIngestionMode string = 'queued'

@description('More database admins: [{ principalId, principalType: User|Group|App }].')
param adxAdminPrincipals array = []

@description('Entra group allowed to read prompt text (LlmMessages has restricted view access); empty: none.')
param adxUnrestrictedViewerGroupId string = ''

// ---------------------------------------------------------------- APIM (existing instance)
@description('Name of an existing API Management instance to wire to the hub; empty: skip all APIM wiring.')
param apimName string = ''

@description('Resource group of the APIM instance; empty: this one.')
param apimResourceGroupName string = ''

@description('API id of the Azure OpenAI API in APIM for body and LLM message logging; empty: none.')
param apimApiId string = ''

@minValue(0)
@maxValue(8192)
param apimBodyBytes int = 8192

param apimLogLlmMessages bool = true

@minValue(0)
param apimLlmMessageMaxBytes int = 32768

@description('Also create an Event Hub logger (APIM managed identity) and the log-to-eventhub policy fragment.')
param apimEventHubLogger bool = false

@description('Deploy the origin design\'s APIM configuration (backend pool, circuit breaker, teams, token metrics).')
param deployApimGatewayConfig bool = false

@description('Azure OpenAI backends: [{ name, endpoint, resourceId }].')
param openAiBackends array = []

@allowed([
  'RoundRobin'
  'Priority'
])
param openAiLoadBalancing string = 'RoundRobin'

@description('Teams: [{ name, displayName }].')
param apimTeams array = []

// ---------------------------------------------------------------- private network (off by default)
@description('Private network: a virtual network, the app\'s outbound integration, private endpoints and DNS zones for Event Hubs, storage (blob, queue, table) and ADX, public network access off on each. azd deploy and the postprovision seed then run from inside the network (infra/README.md).')
param privateNetwork bool = false

@description('Address space of the virtual network (privateNetwork).')
param vnetAddressPrefix string = '10.60.0.0/22'

@description('Subnet of the Functions app\'s outbound virtual network integration (delegated to Microsoft.App/environments).')
param appSubnetPrefix string = '10.60.0.0/24'

@description('Subnet of the private endpoints (ADX alone takes up to 13 addresses: a /28 at the very least).')
param privateEndpointSubnetPrefix string = '10.60.1.0/24'

// ---------------------------------------------------------------- alerts
param alertsEnabled bool = true

@description('Action group to notify; empty: alerts fire without notifications.')
param actionGroupId string = ''

var resourceToken = toLower(uniqueString(subscription().id, resourceGroup().id, environmentName))
var tags = {
  'azd-env-name': environmentName
}
var functionAppName = 'func-ingest-${resourceToken}'
var triggerFunctionName = 'ingest_apim_logs'
var useExistingAdx = !empty(existingAdxClusterName)
var adxClusterName = useExistingAdx ? existingAdxClusterName : 'adx${resourceToken}'
var apimEnabled = !empty(apimName)
var apimResourceGroup = empty(apimResourceGroupName) ? resourceGroup().name : apimResourceGroupName
var deploymentContainerName = 'app-package-${take(resourceToken, 20)}'
var apimLoggerName = 'apim-adx-eventhub'
var deployingUser = [
  {
    principalId: principalId
    principalType: 'User'
  }
]
var addDeployingUser = !empty(principalId) && principalType == 'User'
var adxAdmins = addDeployingUser ? concat(adxAdminPrincipals, deployingUser) : adxAdminPrincipals
var apimFragmentName = 'llm-usage-to-eventhub'

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-ingest-${resourceToken}'
  location: location
  tags: tags
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    tags: tags
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    tags: tags
    storageAccountName: 'st${resourceToken}'
    deploymentContainerName: deploymentContainerName
    deadLetterContainerName: deadLetterContainerName
    deadLetterCoolAfterDays: deadLetterCoolAfterDays
    deadLetterDeleteAfterDays: deadLetterDeleteAfterDays
    captureEnabled: captureEnabled
    captureContainerName: captureContainerName
    privateNetwork: privateNetwork
  }
}

module eventHubs 'modules/eventhubs.bicep' = {
  name: 'eventhubs'
  params: {
    location: location
    tags: tags
    namespaceName: 'evhns-${resourceToken}'
    skuName: eventHubSku
    skuCapacity: eventHubCapacity
    eventHubName: eventHubName
    partitionCount: eventHubPartitionCount
    messageRetentionInDays: eventHubMessageRetentionInDays
    consumerGroupName: consumerGroupName
    identityId: identity.id
    captureEnabled: captureEnabled
    captureStorageAccountId: storage.outputs.id
    captureContainerName: captureContainerName
    apimDiagnosticsRuleName: 'apim-diagnostics'
    privateNetwork: privateNetwork
  }
  dependsOn: [
    // Capture writes with the identity: its Storage Blob Data Owner role must exist first.
    rbac
  ]
}

module rbac 'modules/rbac.bicep' = {
  name: 'rbac'
  params: {
    principalId: identity.properties.principalId
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
  }
}

module hubReceiver 'modules/hub-role.bicep' = {
  name: 'eventhub-receiver'
  params: {
    eventHubNamespaceName: eventHubs.outputs.namespaceName
    eventHubName: eventHubs.outputs.eventHubName
    principalId: identity.properties.principalId
    access: 'receiver'
  }
}

module adx 'modules/adx.bicep' = {
  name: 'adx'
  params: {
    location: location
    tags: tags
    clusterName: adxClusterName
    useExistingCluster: useExistingAdx
    skuName: adxSkuName
    skuTier: adxSkuTier
    skuCapacity: adxCapacity
    enableStreamingIngest: adxIngestionMode != 'queued'
    privateNetwork: privateNetwork
    databaseName: adxDatabaseName
    ingestorClientId: identity.properties.clientId
    adminPrincipals: adxAdmins
    unrestrictedViewerGroupId: adxUnrestrictedViewerGroupId
  }
}

module network 'modules/network.bicep' = if (privateNetwork) {
  name: 'network'
  params: {
    location: location
    tags: tags
    vnetName: 'vnet-${resourceToken}'
    addressPrefix: vnetAddressPrefix
    appSubnetPrefix: appSubnetPrefix
    privateEndpointSubnetPrefix: privateEndpointSubnetPrefix
    eventHubNamespaceId: eventHubs.outputs.namespaceId
    storageAccountId: storage.outputs.id
    adxClusterId: adx.outputs.clusterId
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    location: location
    tags: tags
    planName: 'plan-ingest-${resourceToken}'
    functionAppName: functionAppName
    serviceName: 'ingest'
    identityId: identity.id
    identityClientId: identity.properties.clientId
    storageAccountName: storage.outputs.name
    storageBlobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerName: deploymentContainerName
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    alwaysReadyInstances: alwaysReadyInstances
    triggerFunctionName: triggerFunctionName
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    eventHubFullyQualifiedNamespace: eventHubs.outputs.fullyQualifiedNamespace
    eventHubName: eventHubs.outputs.eventHubName
    consumerGroupName: eventHubs.outputs.consumerGroupName
    adxClusterUri: adx.outputs.clusterUri
    adxIngestUri: adx.outputs.ingestUri
    adxDatabaseName: adx.outputs.databaseName
    adxIngestionMode: adxIngestionMode
    adxRetries: adxRetries
    adxRetryBaseSeconds: adxRetryBaseSeconds
    deadLetterContainerName: storage.outputs.deadLetterContainerName
    captureText: captureText
    captureTextMaxChars: captureTextMaxChars
    deadLetterMaxBytes: deadLetterMaxBytes
    estimateTokens: estimateTokens
    policyMappingFile: policyMappingFile
    virtualNetworkSubnetId: privateNetwork ? network.outputs.appSubnetId : ''
  }
  dependsOn: [
    // The app starts reading as soon as it exists: its roles come first.
    rbac
    hubReceiver
  ]
}

module apimWiring 'modules/apim-wiring.bicep' = if (apimEnabled) {
  name: 'apim-wiring'
  scope: resourceGroup(apimResourceGroup)
  params: {
    apimName: apimName
    eventHubAuthorizationRuleId: eventHubs.outputs.apimDiagnosticsRuleId
    eventHubName: eventHubs.outputs.eventHubName
    eventHubFullyQualifiedNamespace: eventHubs.outputs.fullyQualifiedNamespace
    eventHubId: eventHubs.outputs.eventHubId
    apiId: apimApiId
    bodyBytes: apimBodyBytes
    logLlmMessages: apimLogLlmMessages
    llmMessageMaxBytes: apimLlmMessageMaxBytes
    createEventHubLogger: apimEventHubLogger
    loggerName: apimLoggerName
    policyFragmentName: apimFragmentName
  }
}

module apimSender 'modules/hub-role.bicep' = if (apimEnabled && apimEventHubLogger) {
  name: 'apim-eventhub-sender'
  params: {
    eventHubNamespaceName: eventHubs.outputs.namespaceName
    eventHubName: eventHubs.outputs.eventHubName
    principalId: apimWiring.outputs.principalId
    access: 'sender'
  }
}

module apimGateway 'modules/apim-gateway.bicep' = if (apimEnabled && deployApimGatewayConfig && !empty(apimApiId)) {
  name: 'apim-gateway'
  scope: resourceGroup(apimResourceGroup)
  params: {
    apimName: apimName
    apiId: apimApiId
    backends: openAiBackends
    loadBalancing: openAiLoadBalancing
    teams: apimTeams
    usageFragmentName: apimEventHubLogger ? apimFragmentName : ''
  }
  dependsOn: [
    apimWiring
  ]
}

module openAiRoles 'modules/openai-role.bicep' = [
  for backend in (apimEnabled && deployApimGatewayConfig && !empty(apimApiId) ? openAiBackends : []): {
    name: 'openai-user-${backend.name}'
    scope: resourceGroup(split(backend.resourceId, '/')[2], split(backend.resourceId, '/')[4])
    params: {
      openAiAccountName: last(split(backend.resourceId, '/'))
      principalId: apimGateway.outputs.principalId
    }
  }
]

module alerts 'modules/alerts.bicep' = if (alertsEnabled) {
  name: 'alerts'
  params: {
    location: location
    tags: tags
    namePrefix: 'ingest-${resourceToken}'
    applicationInsightsId: monitoring.outputs.applicationInsightsId
    eventHubNamespaceId: eventHubs.outputs.namespaceId
    eventHubName: eventHubs.outputs.eventHubName
    adxClusterId: adx.outputs.clusterId
    triggerFunctionName: triggerFunctionName
    actionGroupId: actionGroupId
  }
}

// azd writes these outputs to the environment (.azure/<env>/.env): the postprovision hook and
// `python -m ingest` read them.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_CLIENT_ID string = identity.properties.clientId
output ADX_CLUSTER_URI string = adx.outputs.clusterUri
output ADX_INGEST_URI string = adx.outputs.ingestUri
output ADX_DATABASE string = adx.outputs.databaseName
output EVENTHUB_NAMESPACE string = eventHubs.outputs.fullyQualifiedNamespace
output EVENTHUB_NAME string = eventHubs.outputs.eventHubName
output EVENTHUB_CONSUMER_GROUP string = eventHubs.outputs.consumerGroupName
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output DEAD_LETTER_CONTAINER string = storage.outputs.deadLetterContainerName
output APPLICATIONINSIGHTS_CONNECTION_STRING string = monitoring.outputs.connectionString
output PRIVATE_NETWORK bool = privateNetwork
output AZURE_VNET_NAME string = privateNetwork ? network.outputs.name : ''
