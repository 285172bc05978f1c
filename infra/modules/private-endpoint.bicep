// One private endpoint and its DNS zone group: the group writes the endpoint's A records into the
// private DNS zones, so the service's usual name resolves to the private address inside the network
// (learn.microsoft.com/azure/private-link/private-endpoint-dns). tests/infra checks that every
// private endpoint has one.

param location string
param tags object
param name string

@description('Subnet of the private endpoints.')
param subnetId string

@description('Resource id of the private-link resource.')
param targetId string

@description('Group id (sub-resource): namespace, blob, queue, table, cluster.')
param groupId string

@minLength(1)
@description('Private DNS zones the endpoint registers its names in.')
param zoneIds array

resource endpoint 'Microsoft.Network/privateEndpoints@2024-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    subnet: {
      id: subnetId
    }
    privateLinkServiceConnections: [
      {
        name: name
        properties: {
          privateLinkServiceId: targetId
          groupIds: [
            groupId
          ]
        }
      }
    ]
  }
}

resource zoneGroup 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01' = {
  parent: endpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      for zoneId in zoneIds: {
        name: replace(last(split(zoneId, '/')), '.', '-')
        properties: {
          privateDnsZoneId: zoneId
        }
      }
    ]
  }
}

output id string = endpoint.id
