// The private network (main.bicep's `privateNetwork` option): one virtual network with a subnet for
// the Functions app's outbound traffic (Flex Consumption virtual network integration: the subnet is
// delegated to Microsoft.App/environments, learn.microsoft.com/azure/azure-functions/flex-consumption-plan)
// and a subnet for private endpoints; the private DNS zones the endpoints register in, linked to the
// network (zone names: learn.microsoft.com/azure/private-link/private-endpoint-dns), and the private
// endpoints of Event Hubs, the storage account (blob, queue, table) and ADX.

param location string
param tags object
param vnetName string

@description('Address space of the network.')
param addressPrefix string

@description('Subnet of the Functions app\'s virtual network integration (outbound).')
param appSubnetPrefix string

@description('Subnet of the private endpoints (ADX needs at least a /28 for its own endpoint).')
param privateEndpointSubnetPrefix string

param eventHubNamespaceId string
param storageAccountId string
param adxClusterId string

var appSubnetName = 'snet-app'
var endpointSubnetName = 'snet-private-endpoints'

// Private DNS zone names (private-endpoint-dns): Event Hubs namespace, Storage blob/queue/table,
// and Azure Data Explorer, whose zone carries the region (privatelink.{regionName}.kusto.windows.net).
var zoneNames = {
  eventHubs: 'privatelink.servicebus.windows.net'
  blob: 'privatelink.blob.${environment().suffixes.storage}'
  queue: 'privatelink.queue.${environment().suffixes.storage}'
  table: 'privatelink.table.${environment().suffixes.storage}'
  kusto: 'privatelink.${location}.kusto.windows.net'
}

// Neither subnet takes inbound traffic from outside the network: the NSG keeps Azure's default
// rules (virtual network in, load balancer probes in, everything else denied) and says so.
resource nsg 'Microsoft.Network/networkSecurityGroups@2024-05-01' = {
  name: '${vnetName}-nsg'
  location: location
  tags: tags
  properties: {
    securityRules: []
  }
}

resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: vnetName
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: appSubnetName
        properties: {
          addressPrefix: appSubnetPrefix
          networkSecurityGroup: {
            id: nsg.id
          }
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
      {
        name: endpointSubnetName
        properties: {
          addressPrefix: privateEndpointSubnetPrefix
          networkSecurityGroup: {
            id: nsg.id
          }
          privateEndpointNetworkPolicies: 'Disabled'
        }
      }
    ]
  }
}

resource eventHubsZone 'Microsoft.Network/privateDnsZones@2024-06-01' = {
  name: zoneNames.eventHubs
  location: 'global'
  tags: tags
}

resource blobZone 'Microsoft.Network/privateDnsZones@2024-06-01' = {
  name: zoneNames.blob
  location: 'global'
  tags: tags
}

resource queueZone 'Microsoft.Network/privateDnsZones@2024-06-01' = {
  name: zoneNames.queue
  location: 'global'
  tags: tags
}

resource tableZone 'Microsoft.Network/privateDnsZones@2024-06-01' = {
  name: zoneNames.table
  location: 'global'
  tags: tags
}

resource kustoZone 'Microsoft.Network/privateDnsZones@2024-06-01' = {
  name: zoneNames.kusto
  location: 'global'
  tags: tags
}

resource eventHubsLink 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = {
  parent: eventHubsZone
  name: vnetName
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnet.id
    }
  }
}

resource blobLink 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = {
  parent: blobZone
  name: vnetName
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnet.id
    }
  }
}

resource queueLink 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = {
  parent: queueZone
  name: vnetName
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnet.id
    }
  }
}

resource tableLink 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = {
  parent: tableZone
  name: vnetName
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnet.id
    }
  }
}

resource kustoLink 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = {
  parent: kustoZone
  name: vnetName
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnet.id
    }
  }
}

var endpointSubnetId = resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, endpointSubnetName)

// Group ids (sub-resources) per private-link resource type: `namespace` for Event Hubs, `blob`,
// `queue`, `table` for Storage (private-endpoint-overview), `cluster` for ADX: one endpoint for the
// engine and the Data Management (ingest-) endpoint, which also registers the FQDNs of the
// cluster's staging storage in the blob, queue and table zones
// (learn.microsoft.com/azure/data-explorer/security-network-private-endpoint).
module eventHubsEndpoint 'private-endpoint.bicep' = {
  name: 'pe-eventhubs'
  params: {
    location: location
    tags: tags
    name: 'pe-${last(split(eventHubNamespaceId, '/'))}-namespace'
    subnetId: endpointSubnetId
    targetId: eventHubNamespaceId
    groupId: 'namespace'
    zoneIds: [
      eventHubsZone.id
    ]
  }
  dependsOn: [
    eventHubsLink
  ]
}

module blobEndpoint 'private-endpoint.bicep' = {
  name: 'pe-storage-blob'
  params: {
    location: location
    tags: tags
    name: 'pe-${last(split(storageAccountId, '/'))}-blob'
    subnetId: endpointSubnetId
    targetId: storageAccountId
    groupId: 'blob'
    zoneIds: [
      blobZone.id
    ]
  }
  dependsOn: [
    blobLink
  ]
}

module queueEndpoint 'private-endpoint.bicep' = {
  name: 'pe-storage-queue'
  params: {
    location: location
    tags: tags
    name: 'pe-${last(split(storageAccountId, '/'))}-queue'
    subnetId: endpointSubnetId
    targetId: storageAccountId
    groupId: 'queue'
    zoneIds: [
      queueZone.id
    ]
  }
  dependsOn: [
    queueLink
  ]
}

module tableEndpoint 'private-endpoint.bicep' = {
  name: 'pe-storage-table'
  params: {
    location: location
    tags: tags
    name: 'pe-${last(split(storageAccountId, '/'))}-table'
    subnetId: endpointSubnetId
    targetId: storageAccountId
    groupId: 'table'
    zoneIds: [
      tableZone.id
    ]
  }
  dependsOn: [
    tableLink
  ]
}

module adxEndpoint 'private-endpoint.bicep' = {
  name: 'pe-adx-cluster'
  params: {
    location: location
    tags: tags
    name: 'pe-${last(split(adxClusterId, '/'))}-cluster'
    subnetId: endpointSubnetId
    targetId: adxClusterId
    groupId: 'cluster'
    zoneIds: [
      kustoZone.id
      blobZone.id
      queueZone.id
      tableZone.id
    ]
  }
  dependsOn: [
    kustoLink
    blobLink
    queueLink
    tableLink
    // One private endpoint operation at a time on the shared subnet and zones.
    tableEndpoint
  ]
}

output id string = vnet.id
output name string = vnet.name
output appSubnetId string = resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, appSubnetName)
output privateEndpointSubnetId string = endpointSubnetId
