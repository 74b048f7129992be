// A Key Vault in RBAC mode: who may read a secret is a role assignment (access.bicep), never an access policy.
param name string
param location string
param tags object

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  //checkov:skip=CKV_AZURE_109:no virtual network: App Service resolves Key Vault references, and Data Factory's Web activity reads the function key, over the public endpoint. RBAC decides who reads what.
  //checkov:skip=CKV_AZURE_189:the same: public network access is how the app and the factories reach their vault without a virtual network.
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    // A deleted secret or vault can be recovered for 90 days, and nobody can purge it sooner.
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    // Public endpoint, as the app has no virtual network; only tokens with a role read secrets.
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
