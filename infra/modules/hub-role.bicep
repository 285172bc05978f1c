// One data-plane role on the one event hub (not the namespace): the app's identity receives, APIM's
// Event Hub logger identity sends. Role ids: learn.microsoft.com/azure/role-based-access-control/built-in-roles.

param eventHubNamespaceName string
param eventHubName string
param principalId string

@allowed([
  'receiver'
  'sender'
])
param access string

var roles = {
  receiver: 'a638d3c7-ab3a-418d-83e6-5f17a39d4fde' // Azure Event Hubs Data Receiver
  sender: '2b629674-e913-4c01-ae53-ef4638d8f975' // Azure Event Hubs Data Sender
}

resource namespace 'Microsoft.EventHub/namespaces@2024-01-01' existing = {
  name: eventHubNamespaceName
}

resource hub 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' existing = {
  parent: namespace
  name: eventHubName
}

resource hubRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hub.id, principalId, roles[access])
  scope: hub
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles[access])
  }
}
