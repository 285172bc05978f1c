// A new ADX cluster (adx.bicep deploys this module only when no existing cluster is named). Kept in a
// module of its own so the resource itself is unconditional and checkov evaluates its properties.

param location string
param tags object
param clusterName string
param skuName string
param skuTier string

@minValue(1)
param skuCapacity int

param enableStreamingIngest bool

@description('Private network option: public network access off (query and ingestion through the private endpoint).')
param privateNetwork bool

resource cluster 'Microsoft.Kusto/clusters@2024-04-13' = {
  name: clusterName
  location: location
  tags: tags
  sku: {
    name: skuName
    tier: skuTier
    capacity: skuCapacity
  }
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    enableStreamingIngest: enableStreamingIngest
    enableDiskEncryption: true
    enableDoubleEncryption: false
    enablePurge: false
    // Auto-stop would stop a dev cluster that is only ingested into, never queried.
    enableAutoStop: false
    publicNetworkAccess: privateNetwork ? 'Disabled' : 'Enabled'
    restrictOutboundNetworkAccess: 'Disabled'
  }
}

output id string = cluster.id
output uri string = cluster.properties.uri
output dataIngestionUri string = cluster.properties.dataIngestionUri
