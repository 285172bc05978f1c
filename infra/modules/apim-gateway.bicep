// The origin design's APIM configuration as code (optional; deployed in APIM's resource group):
// Azure OpenAI backends with a circuit breaker on 429 and 5xx, a load-balanced pool over them
// (round-robin: equal priority and weight; or priority: failover in the listed order), products and
// subscriptions per team, APIM's managed identity towards the backends, and the API policy that
// uses the pool and emits token metrics.

param apimName string

@description('API id (name) of the Azure OpenAI API in APIM.')
param apiId string

@description('Azure OpenAI backends: [{ name, endpoint (https://<account>.openai.azure.com/), resourceId }].')
param backends array

@allowed([
  'RoundRobin'
  'Priority'
])
param loadBalancing string

@description('Teams: [{ name, displayName }]; each gets a product with the API and one subscription.')
param teams array

@description('Name of the policy fragment writing usage events (empty: not included).')
param usageFragmentName string

var poolName = 'openai-pool'
var policyTemplate = loadTextContent('../policies/openai-api-policy.xml')
var policyWithPool = replace(policyTemplate, '__POOL_ID__', poolName)
var outboundPolicy = empty(usageFragmentName) ? '' : '<include-fragment fragment-id="${usageFragmentName}" />'

resource apim 'Microsoft.ApiManagement/service@2024-05-01' existing = {
  name: apimName
}

resource api 'Microsoft.ApiManagement/service/apis@2024-05-01' existing = {
  parent: apim
  name: apiId
}

// Take a backend out for a minute after 3 throttled or failed calls within a minute; honour Retry-After.
@batchSize(1)
resource openAiBackends 'Microsoft.ApiManagement/service/backends@2024-06-01-preview' = [
  for backend in backends: {
    parent: apim
    name: backend.name
    properties: {
      description: 'Azure OpenAI ${backend.name}'
      url: '${backend.endpoint}openai'
      protocol: 'http'
      tls: {
        validateCertificateChain: true
        validateCertificateName: true
      }
      circuitBreaker: {
        rules: [
          {
            name: 'throttled-or-failing'
            acceptRetryAfter: true
            tripDuration: 'PT1M'
            failureCondition: {
              count: 3
              interval: 'PT1M'
              statusCodeRanges: [
                {
                  min: 429
                  max: 429
                }
                {
                  min: 500
                  max: 599
                }
              ]
            }
          }
        ]
      }
    }
  }
]

resource pool 'Microsoft.ApiManagement/service/backends@2024-06-01-preview' = {
  parent: apim
  name: poolName
  properties: {
    description: 'Azure OpenAI backends (${loadBalancing})'
    type: 'Pool'
    pool: {
      services: [
        for (backend, i) in backends: {
          id: '/backends/${backend.name}'
          priority: loadBalancing == 'Priority' ? i + 1 : 1
          weight: 1
        }
      ]
    }
  }
  dependsOn: [
    openAiBackends
  ]
}

resource apiPolicy 'Microsoft.ApiManagement/service/apis/policies@2024-05-01' = {
  parent: api
  name: 'policy'
  properties: {
    format: 'rawxml'
    value: replace(policyWithPool, '__OUTBOUND__', outboundPolicy)
  }
  dependsOn: [
    pool
  ]
}

resource products 'Microsoft.ApiManagement/service/products@2024-05-01' = [
  for team in teams: {
    parent: apim
    name: 'team-${team.name}'
    properties: {
      displayName: team.displayName
      description: 'Azure OpenAI access for ${team.displayName}'
      subscriptionRequired: true
      approvalRequired: false
      state: 'published'
    }
  }
]

resource productApis 'Microsoft.ApiManagement/service/products/apis@2024-05-01' = [
  for (team, i) in teams: {
    parent: products[i]
    name: apiId
  }
]

resource subscriptions 'Microsoft.ApiManagement/service/subscriptions@2024-05-01' = [
  for (team, i) in teams: {
    parent: apim
    name: 'team-${team.name}'
    properties: {
      displayName: '${team.displayName} (Azure OpenAI)'
      scope: products[i].id
      state: 'active'
      allowTracing: false
    }
  }
]

output principalId string = apim.identity.principalId
