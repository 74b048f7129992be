// What the app may do in Data Factory: exactly the four operations its code calls, no other.
// tests/test_infra.py holds this list against the calls in shared/ (local_dev/arm_actions.py derives
// the actions from the code and the SDK), so it cannot drift from what the app does.
targetScope = 'subscription'

param environmentName string
@description('The factories, each {subscriptionId, resourceGroup, name}; their resource groups are where the role may be assigned.')
param factories array

// A custom role may be assignable in resource groups (not in single resources); it is assigned on each
// factory only (factory-access.bicep). union() drops repeated resource groups.
var factoryGroups = [for f in factories: '/subscriptions/${f.subscriptionId}/resourceGroups/${f.resourceGroup}']
var assignableScopes = union(factoryGroups, [])

resource runner 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, environmentName, 'pausable-pipelines-runner')
  properties: {
    // Role names are unique in the tenant: the same environment name in two subscriptions must not clash.
    roleName: 'Pausable Pipelines runner (${environmentName} ${take(uniqueString(subscription().id, environmentName), 6)})'
    description: 'Read pipelines, start their runs, read and find runs: what Pausable Pipelines needs in a factory.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          // the check at pause time that the pipeline exists and declares pause_id
          'Microsoft.DataFactory/factories/pipelines/read'
          // starting the pipeline on approval (createRun)
          'Microsoft.DataFactory/factories/pipelines/createrun/action'
          // reading a run: adf_run checks, and whether a run the app started exists
          'Microsoft.DataFactory/factories/pipelineruns/read'
          // finding the run whose createRun got no answer (queryPipelineRuns), so it is never started twice
          'Microsoft.DataFactory/factories/querypipelineruns/action'
        ]
        notActions: []
      }
    ]
    assignableScopes: assignableScopes
  }
}

// Its name (a GUID): a role assignment in any subscription of the tenant refers to it by that.
output roleName string = runner.name
