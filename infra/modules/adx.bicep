// Azure Data Explorer: a cluster (or an existing one), the database, its principals, and the kusto/
// scripts applied in file-name order by database script resources.
//
// A script resource runs only database-level management commands whose verb is .create,
// .create-or-alter, .create-merge, .alter, .alter-merge or .add
// (learn.microsoft.com/azure/data-explorer/database-script). kusto/70_prices.kql appends rows with
// .set-or-append, an ingestion command: it is not loaded here; azure.yaml's postprovision hook runs
// `python -m ingest kusto seed` for it. Two scripts cannot be created in parallel on one cluster
// (ServiceIsInMaintenance), hence the dependsOn chain.

param location string
param tags object

@description('Name of the cluster to create, or of the existing cluster when useExistingCluster is true.')
param clusterName string
param useExistingCluster bool

@description('Dev/test SKU by default: no SLA, one node.')
param skuName string
param skuTier string

@minValue(1)
param skuCapacity int

@description('Streaming ingestion must be enabled on the cluster when the app uses streaming or managed mode.')
param enableStreamingIngest bool

@description('Private network option: a new cluster gets public network access off (an existing one is left as it is).')
param privateNetwork bool

param databaseName string

@description('Client id of the app\'s user-assigned identity: Ingestor on the database.')
param ingestorClientId string

@description('Database admins: [{ principalId, principalType: User|Group|App }].')
param adminPrincipals array

@description('Entra group (object id) allowed to read LlmMessages (restricted view access); empty: none.')
param unrestrictedViewerGroupId string

module newCluster 'adx-cluster.bicep' = if (!useExistingCluster) {
  name: 'adx-cluster'
  params: {
    location: location
    tags: tags
    clusterName: clusterName
    skuName: skuName
    skuTier: skuTier
    skuCapacity: skuCapacity
    enableStreamingIngest: enableStreamingIngest
    privateNetwork: privateNetwork
  }
}

resource existingCluster 'Microsoft.Kusto/clusters@2024-04-13' existing = if (useExistingCluster) {
  name: clusterName
}

resource database 'Microsoft.Kusto/clusters/databases@2024-04-13' = {
  name: '${clusterName}/${databaseName}'
  location: location
  kind: 'ReadWrite'
  properties: {
    // Table policies in kusto/40_policies.kql set each table's retention and cache; these are defaults.
    softDeletePeriod: 'P1095D'
    hotCachePeriod: 'P31D'
  }
  dependsOn: [
    newCluster
  ]
}

resource ingestor 'Microsoft.Kusto/clusters/databases/principalAssignments@2024-04-13' = {
  parent: database
  name: 'app-ingestor'
  properties: {
    principalId: ingestorClientId
    principalType: 'App'
    role: 'Ingestor'
    tenantId: tenant().tenantId
  }
}

@batchSize(1)
resource admins 'Microsoft.Kusto/clusters/databases/principalAssignments@2024-04-13' = [
  for admin in adminPrincipals: {
    parent: database
    name: 'admin-${uniqueString(admin.principalId)}'
    properties: {
      principalId: admin.principalId
      principalType: admin.principalType
      role: 'Admin'
      tenantId: tenant().tenantId
    }
    dependsOn: [
      ingestor
    ]
  }
]

resource unrestrictedViewers 'Microsoft.Kusto/clusters/databases/principalAssignments@2024-04-13' = if (!empty(unrestrictedViewerGroupId)) {
  parent: database
  name: 'llm-messages-readers'
  properties: {
    principalId: unrestrictedViewerGroupId
    principalType: 'Group'
    role: 'UnrestrictedViewer'
    tenantId: tenant().tenantId
  }
  dependsOn: [
    admins
  ]
}

resource script10Tables 'Microsoft.Kusto/clusters/databases/scripts@2024-04-13' = {
  parent: database
  name: '10-tables'
  properties: {
    scriptContent: loadTextContent('../../kusto/10_tables.kql')
    continueOnErrors: false
  }
  dependsOn: [
    ingestor
    unrestrictedViewers
  ]
}

resource script20Mappings 'Microsoft.Kusto/clusters/databases/scripts@2024-04-13' = {
  parent: database
  name: '20-mappings'
  properties: {
    scriptContent: loadTextContent('../../kusto/20_mappings.kql')
    continueOnErrors: false
  }
  dependsOn: [
    script10Tables
  ]
}

resource script30UpdateFunctions 'Microsoft.Kusto/clusters/databases/scripts@2024-04-13' = {
  parent: database
  name: '30-update-functions'
  properties: {
    scriptContent: loadTextContent('../../kusto/30_update_functions.kql')
    continueOnErrors: false
  }
  dependsOn: [
    script20Mappings
  ]
}

resource script40Policies 'Microsoft.Kusto/clusters/databases/scripts@2024-04-13' = {
  parent: database
  name: '40-policies'
  properties: {
    scriptContent: loadTextContent('../../kusto/40_policies.kql')
    continueOnErrors: false
  }
  dependsOn: [
    script30UpdateFunctions
  ]
}

resource script50Views 'Microsoft.Kusto/clusters/databases/scripts@2024-04-13' = {
  parent: database
  name: '50-views'
  properties: {
    scriptContent: loadTextContent('../../kusto/50_views.kql')
    continueOnErrors: false
  }
  dependsOn: [
    script40Policies
  ]
}

resource script60Functions 'Microsoft.Kusto/clusters/databases/scripts@2024-04-13' = {
  parent: database
  name: '60-functions'
  properties: {
    scriptContent: loadTextContent('../../kusto/60_functions.kql')
    continueOnErrors: false
  }
  dependsOn: [
    script50Views
  ]
}

resource script62Finance 'Microsoft.Kusto/clusters/databases/scripts@2024-04-13' = {
  parent: database
  name: '62-finance'
  properties: {
    scriptContent: loadTextContent('../../kusto/62_finance.kql')
    continueOnErrors: false
  }
  dependsOn: [
    script60Functions
  ]
}

resource script65Operations 'Microsoft.Kusto/clusters/databases/scripts@2024-04-13' = {
  parent: database
  name: '65-operations'
  properties: {
    scriptContent: loadTextContent('../../kusto/65_operations.kql')
    continueOnErrors: false
  }
  dependsOn: [
    script62Finance
  ]
}

output clusterId string = useExistingCluster ? existingCluster.id : newCluster.outputs.id
output clusterUri string = useExistingCluster ? existingCluster.properties.uri : newCluster.outputs.uri
output ingestUri string = useExistingCluster ? existingCluster.properties.dataIngestionUri : newCluster.outputs.dataIngestionUri
output databaseName string = databaseName
