// The app's storage account: Functions host state and Event Hubs checkpoints, the Flex Consumption
// deployment package, the dead-letter container (with a lifecycle rule), and optionally Capture.
// Shared-key access is off: everything reaches it with the user-assigned identity.

param location string
param tags object
param storageAccountName string
param deploymentContainerName string
param deadLetterContainerName string

@description('Days after which a dead-letter blob moves to the cool tier.')
@minValue(1)
param deadLetterCoolAfterDays int

@description('Days after which a dead-letter blob is deleted (redrive it before then).')
@minValue(1)
param deadLetterDeleteAfterDays int

param captureEnabled bool
param captureContainerName string

@description('Private network option: public network access off (reached through private endpoints only).')
param privateNetwork bool

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    // Private network: no public endpoint at all. `azd deploy` (the package upload) and `redrive`
    // then run from inside the network (infra/README.md).
    publicNetworkAccess: privateNetwork ? 'Disabled' : 'Enabled'
    networkAcls: {
      defaultAction: privateNetwork ? 'Deny' : 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deadLetterContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource captureContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = if (captureEnabled) {
  parent: blobService
  name: captureContainerName
  properties: {
    publicAccess: 'None'
  }
}

// Dead letters are kept for redrive, then cooled and deleted; nothing else is touched.
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'dead-letters-expire'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                '${deadLetterContainerName}/'
              ]
            }
            actions: {
              baseBlob: {
                tierToCool: {
                  daysAfterModificationGreaterThan: deadLetterCoolAfterDays
                }
                delete: {
                  daysAfterModificationGreaterThan: deadLetterDeleteAfterDays
                }
              }
            }
          }
        }
      ]
    }
  }
  dependsOn: [
    deadLetterContainer
  ]
}

output id string = account.id
output name string = account.name
output blobEndpoint string = account.properties.primaryEndpoints.blob
output deploymentContainerName string = deploymentContainer.name
output deadLetterContainerName string = deadLetterContainer.name
