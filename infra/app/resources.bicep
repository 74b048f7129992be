// Everything in the app's resource group, named from one token so that names are unique and stable.
param location string
param tags object
param resourceToken string
param principalId string
param principalType string
param factories array
param otherFactories string
param authClientId string
param operators string
param crossTenantClientId string
param allowedTenants string
param smtpHost string
param smtpPort string
param smtpUsername string
param smtpFrom string
param smtpStartTls bool
@secure()
param smtpPassword string
@secure()
param channelWebhooks object
param channelAllowedHosts string
param sweepSchedule string
param maximumInstanceCount int
param instanceMemoryMB int
param logRetentionDays int
param storageSku string

var functionAppName = 'func-${resourceToken}'
// Flex Consumption reads the app's package from this container (a fixed name: one app per account).
var deploymentContainerName = 'app-package'

// The app's one identity, towards storage, Key Vault, Application Insights and Data Factory. User-assigned,
// so that it exists (and has its roles) before the app starts, and outlives a re-created app.
resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${resourceToken}'
  location: location
  tags: tags
}

module storage 'storage.bicep' = {
  name: 'storage'
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    sku: storageSku
  }
}

module monitoring 'monitoring.bicep' = {
  name: 'monitoring'
  params: {
    workspaceName: 'log-${resourceToken}'
    appInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
    retentionInDays: logRetentionDays
  }
}

// Two vaults, so that each reader can read only what it needs: the app reads its own secrets (SMTP
// password, channel URLs) from the first; the factories read the function key from the second.
module appVault 'vault.bicep' = {
  name: 'app-vault'
  params: {
    name: 'kv-${resourceToken}'
    location: location
    tags: tags
  }
}

module functionKeyVault 'vault.bicep' = {
  name: 'function-key-vault'
  params: {
    name: 'kvfk-${resourceToken}'
    location: location
    tags: tags
  }
}

module secrets 'secrets.bicep' = {
  name: 'secrets'
  params: {
    vaultName: appVault.outputs.name
    smtpPassword: smtpPassword
    channelWebhooks: channelWebhooks
  }
}

// Roles before the app: its first start already reads storage and Key Vault references.
module access 'access.bicep' = {
  name: 'access'
  params: {
    identityPrincipalId: identity.properties.principalId
    storageAccountName: storage.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    appVaultName: appVault.outputs.name
    functionKeyVaultName: functionKeyVault.outputs.name
    deployerPrincipalId: principalId
    deployerPrincipalType: principalType
  }
}

module function 'function.bicep' = {
  name: 'function'
  params: {
    name: functionAppName
    location: location
    tags: tags
    identityId: identity.id
    identityClientId: identity.properties.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    appInsightsConnectionString: monitoring.outputs.connectionString
    secretSettings: secrets.outputs.appSettings
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
    channelAllowedHosts: channelAllowedHosts
    sweepSchedule: sweepSchedule
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
  }
  dependsOn: [
    access
  ]
}

var functionKeySecretName = 'adf-function-key'

output identityPrincipalId string = identity.properties.principalId
output identityClientId string = identity.properties.clientId
output functionAppName string = function.outputs.name
output functionAppUrl string = function.outputs.url
output keyVaultName string = appVault.outputs.name
output functionKeyVaultName string = functionKeyVault.outputs.name
output functionKeySecretName string = functionKeySecretName
output functionKeySecretUrl string = '${functionKeyVault.outputs.uri}secrets/${functionKeySecretName}'
// The host-level function key Data Factory uses (a named key, so it can be rotated on its own).
output functionKeyName string = 'adf'
