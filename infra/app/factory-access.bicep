// One factory, deployed in the factory's own subscription and resource group: the app's identity gets
// the custom role (adf-role.bicep) on this factory only, not on its resource group or subscription.
param factoryName string
param appPrincipalId string
@description('The custom role\'s name (a GUID), from adf-role.bicep.')
param roleName string

// The role as seen from this factory's subscription.
var roleDefinitionId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleName)

resource factory 'Microsoft.DataFactory/factories@2018-06-01' existing = {
  name: factoryName
}

resource runner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(factory.id, appPrincipalId, roleDefinitionId)
  scope: factory
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The factory's system-assigned identity, which reads the function key (key-readers.bicep).
output factoryPrincipalId string = factory.identity.principalId
