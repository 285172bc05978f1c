// Event Hubs namespace, the hub APIM writes to, this app's own consumer group, the authorization rule
// APIM's diagnostic setting needs, and (optional) Capture of every event to a storage container.

param location string
param tags object
param namespaceName string

@allowed([
  'Standard'
  'Premium'
])
param skuName string

@minValue(1)
param skuCapacity int

param eventHubName string

@minValue(1)
@maxValue(32)
param partitionCount int

@minValue(1)
@maxValue(90)
param messageRetentionInDays int

param consumerGroupName string

@description('Resource id of the user-assigned identity: Capture writes with it (the storage account takes no shared key).')
param identityId string

param captureEnabled bool
param captureStorageAccountId string
param captureContainerName string

@description('Name of the namespace-level rule that APIM diagnostic settings stream with.')
param apimDiagnosticsRuleName string

@description('Private network option: public network access off, trusted Microsoft services (APIM diagnostic settings through Azure Monitor) still allowed.')
param privateNetwork bool

// Capture: Avro files every 5 minutes or 300 MB, written with the user-assigned identity.
var capture = {
  enabled: true
  encoding: 'Avro'
  intervalInSeconds: 300
  sizeLimitInBytes: 314572800
  skipEmptyArchives: true
  destination: {
    name: 'EventHubArchive.AzureBlockBlob'
    identity: {
      type: 'UserAssigned'
      userAssignedIdentity: identityId
    }
    properties: {
      storageAccountResourceId: captureStorageAccountId
      blobContainer: captureContainerName
      archiveNameFormat: '{Namespace}/{EventHub}/{PartitionId}/{Year}/{Month}/{Day}/{Hour}/{Minute}/{Second}'
    }
  }
}

resource namespace 'Microsoft.EventHub/namespaces@2024-01-01' = {
  name: namespaceName
  location: location
  tags: tags
  sku: {
    name: skuName
    tier: skuName
    capacity: skuCapacity
  }
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    minimumTlsVersion: '1.2'
    // Diagnostic settings stream with a shared access (SAS) rule: Azure Monitor documents no
    // identity-based alternative, so SAS stays enabled; the app itself connects by identity only.
    disableLocalAuth: false
    publicNetworkAccess: privateNetwork ? 'Disabled' : 'Enabled'
  }
}

// Private network: deny the public endpoint, except for trusted Microsoft services. Azure Monitor
// (the APIM diagnostic setting) is one of them, and it is how GatewayLogs reach a namespace with no
// public access (learn.microsoft.com/azure/event-hubs/network-security, trusted services).
resource networkRules 'Microsoft.EventHub/namespaces/networkRuleSets@2024-01-01' = if (privateNetwork) {
  parent: namespace
  name: 'default'
  properties: {
    publicNetworkAccess: 'Disabled'
    defaultAction: 'Deny'
    trustedServiceAccessEnabled: true
    ipRules: []
    virtualNetworkRules: []
  }
}

resource hub 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' = {
  parent: namespace
  name: eventHubName
  properties: {
    partitionCount: partitionCount
    messageRetentionInDays: messageRetentionInDays
    captureDescription: captureEnabled ? capture : null
  }
}

resource consumerGroup 'Microsoft.EventHub/namespaces/eventhubs/consumergroups@2024-01-01' = {
  parent: hub
  name: consumerGroupName
  properties: {
    userMetadata: 'APIM gateway logs -> Functions -> ADX (this app only)'
  }
}

// Azure Monitor: "Streaming to event hubs requires Manage, Send, and Listen permissions" on a
// namespace shared access policy. A dedicated rule (not RootManageSharedAccessKey) keeps the key
// APIM's diagnostic setting uses separate and revocable on its own.
resource apimDiagnosticsRule 'Microsoft.EventHub/namespaces/authorizationRules@2024-01-01' = {
  parent: namespace
  name: apimDiagnosticsRuleName
  properties: {
    rights: [
      'Manage'
      'Listen'
      'Send'
    ]
  }
}

output namespaceId string = namespace.id
output namespaceName string = namespace.name
output fullyQualifiedNamespace string = '${namespace.name}.servicebus.windows.net'
output eventHubId string = hub.id
output eventHubName string = hub.name
output consumerGroupName string = consumerGroup.name
output apimDiagnosticsRuleId string = apimDiagnosticsRule.id
