// The app's one storage account: the Functions host's own use, the deployment package, and the app's
// tables (pauses and their indexes) and queue (due work). Reached only with Microsoft Entra tokens.
param name string
param location string
param tags object
param deploymentContainerName string
@description('Replication: zone-redundant by default; Standard_LRS where the region has no availability zones.')
param sku string

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  //checkov:skip=CKV_AZURE_35:the app has no virtual network, so it reaches storage over the public endpoint; with shared keys off, only an Entra token with a role (access.bicep) gets in.
  //checkov:skip=CKV_AZURE_59:the same: public network access is how the app reaches its storage without a virtual network.
  //checkov:skip=CKV_AZURE_206:replication is the storageSku parameter: zone-redundant by default; geo-replication (Standard_GZRS) is a choice, not forced.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: sku
  }
  properties: {
    // No account keys and no SAS signed with them: every caller is an identity with a role (access.bicep).
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    // Public endpoint, as the app has no virtual network; only tokens with a role get in.
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    // A deleted package or host blob can be restored for a week.
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

// Flex Consumption runs the package it finds here, read with the app's identity (Blob Data Owner,
// access.bicep); azd deploy hands the package to the platform, which writes it here.
resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobs
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

output name string = account.name
output blobEndpoint string = account.properties.primaryEndpoints.blob
