// Pausable Pipelines in Azure: what `azd up` creates, and every permission the app is given.
//
// Read in this order: this file (the parameters a user chooses, and what goes where), then
// app/function.bicep (the app and its settings), app/access.bicep (who may do what, and why),
// app/adf-role.bicep and app/factory-access.bicep (the one thing the app may do in Data Factory).
// The template has been checked here by parsing and by checkov only: it has not yet been deployed
// against Azure from this repository.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment: part of every resource name, and of the resource group name.')
param environmentName string

@minLength(1)
@description('Azure region of every resource. It must offer the Flex Consumption plan.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the person (or pipeline) running azd: may write the function key for Data Factory into its vault (the postdeploy hook does). Empty: nobody is given that.')
param principalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
])
@description('What principalId is.')
param principalType string = 'User'

@description('Resource group to create; empty: rg-<environmentName>.')
param resourceGroupName string = ''

@description('Data factories the app may start pipelines in, each {subscriptionId, resourceGroup, name}, in any subscription of this tenant. Each needs a system-assigned managed identity (it reads the function key from Key Vault with it).')
param factories array = []

@description('ALLOWED_FACTORIES beyond `factories`: comma list of subscriptionId/resourceGroup/factory in other tenants, where this template cannot give a role (README "Factories in other tenants"). Empty: none.')
param otherFactories string = ''

@description('Client id of a Microsoft Entra app registration: turns on App Service Authentication (and APPROVER_SIGN_IN=easyauth). Empty: no sign-in; the links are the credential.')
param authClientId string = ''

@description('OPERATORS: comma list of e-mail addresses or UPNs allowed into the operators\' console (needs authClientId).')
param operators string = ''

@description('CROSS_TENANT_CLIENT_ID: multi-tenant app registration trusting the app\'s identity, for factories in other tenants (README "Factories in other tenants"). Empty: not set.')
param crossTenantClientId string = ''

@description('ALLOWED_TENANTS: comma list of tenant ids pauses may name. Empty: not set (any).')
param allowedTenants string = ''

@description('SMTP_HOST for e-mail notifications. Empty: no SMTP settings at all.')
param smtpHost string = ''

@description('SMTP_PORT (465 means implicit TLS).')
param smtpPort string = '587'

@description('SMTP_USERNAME. Empty: not set.')
param smtpUsername string = ''

@description('SMTP_FROM, the sender address (required by the app with smtpHost).')
param smtpFrom string = ''

@description('SMTP_STARTTLS.')
param smtpStartTls bool = true

@secure()
@description('SMTP password: kept in Key Vault, referenced from SMTP_PASSWORD. Empty: neither.')
param smtpPassword string = ''

@secure()
@description('Chat channels: {"<name>": "teams:https://..." or "slack:https://..."}, name 1-40 of a-z, 0-9 and -. Each URL is kept in Key Vault and referenced from CHANNEL_<NAME>. Not mapped in main.parameters.json (an azd environment variable cannot default to an object): add it there to use it.')
param channelWebhooks object = {}

@description('CHANNEL_ALLOWED_HOSTS: hosts a channel URL may have. Empty: not set (the app\'s default).')
param channelAllowedHosts string = ''

@description('PAUSE_SWEEP_SCHEDULE: NCRONTAB schedule of the timer, e.g. 0 */5 * * * * for every five minutes. Empty: not set (every minute).')
param sweepSchedule string = ''

@minValue(1)
@maxValue(1000)
@description('Most on-demand instances (of the app, or of each per-function scale group: the HTTP functions together, each queue function alone). The two queue functions together reach at most twice this: 40 processes sharing one subscription\'s ARM write bucket were simulated at 3 % throttled (80: 12 %).')
param maximumInstanceCount int = 20

@allowed([
  512
  2048
  4096
])
@description('Memory of each instance, in MB.')
param instanceMemoryMB int = 2048

@minValue(30)
@maxValue(730)
@description('Days the Log Analytics workspace keeps logs.')
param logRetentionDays int = 30

@allowed([
  'Standard_ZRS'
  'Standard_LRS'
  'Standard_GZRS'
  'Standard_GRS'
])
@description('Replication of the storage account (pauses live there). Zone-redundant by default; Standard_LRS in a region without availability zones.')
param storageSku string = 'Standard_ZRS'

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
  location: location
  tags: tags
}

// The custom role "what the app may do in Data Factory", defined once, assigned per factory below.
// It is created in the first factory's subscription, one of its assignable scopes (as `az role
// definition create` does); the concat only gives the expression a value when there is no factory.
module adfRole 'app/adf-role.bicep' = if (!empty(factories)) {
  name: 'adf-role'
  scope: subscription(concat(factories, [{ subscriptionId: subscription().subscriptionId }])[0].subscriptionId)
  params: {
    environmentName: environmentName
    factories: factories
  }
}

// Everything in the app's own resource group.
module app 'app/resources.bicep' = {
  name: 'app'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    principalId: principalId
    principalType: principalType
    factories: factories
    otherFactories: otherFactories
    authClientId: authClientId
    operators: operators
    crossTenantClientId: crossTenantClientId
    allowedTenants: allowedTenants
    smtpHost: smtpHost
    smtpPort: smtpPort
    smtpUsername: smtpUsername
    smtpFrom: smtpFrom
    smtpStartTls: smtpStartTls
    smtpPassword: smtpPassword
    channelWebhooks: channelWebhooks
    channelAllowedHosts: channelAllowedHosts
    sweepSchedule: sweepSchedule
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    logRetentionDays: logRetentionDays
    storageSku: storageSku
  }
}

// Per factory, in its own subscription and resource group: the custom role for the app's identity.
module factoryAccess 'app/factory-access.bicep' = [for (f, i) in factories: {
  name: 'factory-access-${i}'
  scope: resourceGroup(f.subscriptionId, f.resourceGroup)
  params: {
    factoryName: f.name
    appPrincipalId: app.outputs.identityPrincipalId
    roleName: adfRole.outputs.roleName
  }
}]

// Each factory's own identity may read the function key (and nothing else) from the function-key vault.
module factoryKeyReaders 'app/key-readers.bicep' = {
  name: 'factory-key-readers'
  scope: rg
  params: {
    vaultName: app.outputs.functionKeyVaultName
    principalIds: [for (f, i) in factories: factoryAccess[i].outputs.factoryPrincipalId]
  }
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_NAME string = app.outputs.functionAppName
output FUNCTION_APP_URL string = app.outputs.functionAppUrl
output PAUSE_ENDPOINT string = '${app.outputs.functionAppUrl}/api/pause'
output KEY_VAULT_NAME string = app.outputs.keyVaultName
// The app's identity: the subject of the federated credential for factories in other tenants (README).
output APP_IDENTITY_PRINCIPAL_ID string = app.outputs.identityPrincipalId
output APP_IDENTITY_CLIENT_ID string = app.outputs.identityClientId
output FUNCTION_KEY_VAULT_NAME string = app.outputs.functionKeyVaultName
output FUNCTION_KEY_SECRET_NAME string = app.outputs.functionKeySecretName
output FUNCTION_KEY_NAME string = app.outputs.functionKeyName
output FUNCTION_KEY_SECRET_URL string = app.outputs.functionKeySecretUrl
output ADF_WIRING string = join([
  'In the pipeline, first a Web activity "GetFunctionKey": GET ${app.outputs.functionKeySecretUrl}?api-version=7.4, authentication System-assigned managed identity, resource https://vault.azure.net, Secure output on.'
  'Then the pause, a Web activity (restart mode) or WebHook activity (callback mode): POST ${app.outputs.functionAppUrl}/api/pause, headers Content-Type: application/json and x-functions-key: @{activity(\'GetFunctionKey\').output.value}, Secure input on; the body as in README "Wiring it into ADF".'
  'The key is the app\'s host key "${app.outputs.functionKeyName}", written to the vault after each azd deploy by infra/hooks/store-function-key.sh.'
], '\n')
