// Who may do what in the app's resource group, and why. Every grant is on one resource, never the group.
// (What the app may do in Data Factory is in adf-role.bicep and factory-access.bicep.)
param identityPrincipalId string
param storageAccountName string
param appInsightsName string
param appVaultName string
param functionKeyVaultName string
@description('The person or pipeline running azd; empty: no grant.')
param deployerPrincipalId string
param deployerPrincipalType string

// Built-in role definition ids (the same in every subscription).
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
var keyVaultSecretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource appVault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: appVaultName
}

resource functionKeyVault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: functionKeyVaultName
}

// Blobs: the Functions host (AzureWebJobsStorage) keeps its keys, the timer's singleton lock (a blob
// lease) and its schedule state in blobs, and Flex Consumption reads the app's package from the
// deployment container. The host creates its containers and manages leases, which takes Owner, not
// Contributor (Microsoft's guidance for an identity-based AzureWebJobsStorage).
resource blobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identityPrincipalId, storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Tables: the pauses, their indexes, holds and the shared keys are the app's own tables, which it
// creates on first use and reads and writes; nothing in tables needs more than Contributor.
resource tableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identityPrincipalId, storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Queues: the due-work queues (DUE_WORK_QUEUE and its '-paced' queue). The app sends, receives and
// deletes their messages and creates them on first use; the Functions host's queue triggers read them,
// and move what fails to '<queue>-poison', which they create. Contributor covers all of it.
resource queueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identityPrincipalId, storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Telemetry: Application Insights accepts only identity-based ingestion (DisableLocalAuth), and this
// is the role that lets an identity send it (APPLICATIONINSIGHTS_AUTHENTICATION_STRING names the identity).
resource telemetryPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, identityPrincipalId, monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The app's secrets: App Service resolves the Key Vault references in the app settings (SMTP_PASSWORD,
// CHANNEL_*) with this identity. Read only, on the app's vault only (not the function-key vault).
resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appVault.id, identityPrincipalId, keyVaultSecretsUser)
  scope: appVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The function key for Data Factory is written by azd's postdeploy hook (infra/hooks/), run as the
// deployer: it may set secrets in the function-key vault, and in no other.
resource deployerKeyWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(functionKeyVault.id, deployerPrincipalId, keyVaultSecretsOfficer)
  scope: functionKeyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficer)
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
  }
}
