// The Function App on the Flex Consumption plan, its optional sign-in, and all of its app settings.
param name string
param location string
param tags object
param identityId string
param identityClientId string
param storageAccountName string
param deploymentContainerName string
param appInsightsConnectionString string
@description('App settings that are Key Vault references (secrets.bicep).')
param secretSettings object
param factories array
@description('Factories in other tenants (sub/rg/factory, comma list): allowed, but no role is given there.')
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
param channelAllowedHosts string
param sweepSchedule string
param maximumInstanceCount int
param instanceMemoryMB int

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  //checkov:skip=CKV_AZURE_225:zone redundancy on Flex Consumption is offered in some regions only and needs always-ready instances (a cost); not turned on here.
  name: 'plan-${name}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true // Linux
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  //checkov:skip=CKV_AZURE_222:Data Factory and the approvers' browsers reach the app over the internet; function keys, the links' tokens and (optionally) Entra sign-in guard it.
  //checkov:skip=CKV_AZURE_17:neither Data Factory's Web activity nor a browser presents a client certificate.
  //checkov:skip=CKV_AZURE_212:Flex Consumption scales to zero and back by design; a pause waits in storage, not in an instance.
  //checkov:skip=CKV_AZURE_213:no App Service health check: instances come and go with load on Flex Consumption (whether Flex offers the feature was not verified here).
  name: name
  location: location
  // azd finds the app to deploy `api` (azure.yaml) to by this tag.
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references in the app settings are resolved with the user-assigned identity (the
    // app has no system-assigned one), which holds Key Vault Secrets User on the app's vault.
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      // The Python the tests run (3.11). Flex takes the runtime from here: no FUNCTIONS_WORKER_RUNTIME
      // or FUNCTIONS_EXTENSION_VERSION app setting (it refuses them).
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// Sign-in for approvers and operators, only with an app registration (sign-in.bicep says how).
module signIn 'sign-in.bicep' = if (!empty(authClientId)) {
  name: 'sign-in'
  params: {
    siteName: site.name
    clientId: authClientId
  }
}

// The app settings, all of them, here: this resource replaces the app's settings as a whole.
var storageSettings = {
  // The Functions host and the app reach the one account with the identity, never with a key.
  AzureWebJobsStorage__blobServiceUri: storage.properties.primaryEndpoints.blob
  AzureWebJobsStorage__queueServiceUri: storage.properties.primaryEndpoints.queue
  AzureWebJobsStorage__tableServiceUri: storage.properties.primaryEndpoints.table
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
}
var telemetrySettings = {
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
}
// ALLOWED_FACTORIES: the factories the app has a role on, and those in other tenants (where an
// administrator there gives the role, README "Factories in other tenants"); no other. None at all:
// not limited (the app's identity then has a Data Factory role only where someone gave it one).
var factoryPaths = [for f in factories: '${f.subscriptionId}/${f.resourceGroup}/${f.name}']
var allowedFactories = empty(otherFactories) ? factoryPaths : concat(factoryPaths, [otherFactories])
var appSettingsCore = {
  // azure-identity's DefaultAzureCredential picks the user-assigned identity by this.
  AZURE_CLIENT_ID: identityClientId
  AZURE_TENANT_ID: tenant().tenantId
  PUBLIC_BASE_URL: 'https://${site.properties.defaultHostName}'
  ALLOWED_FACTORIES: join(allowedFactories, ',')
  APPROVER_SIGN_IN: empty(authClientId) ? 'none' : 'easyauth'
}
var optionalSettings = union(empty(operators) ? {} : {
  OPERATORS: operators
}, empty(crossTenantClientId) ? {} : {
  CROSS_TENANT_CLIENT_ID: crossTenantClientId
}, empty(allowedTenants) ? {} : {
  ALLOWED_TENANTS: allowedTenants
}, empty(channelAllowedHosts) ? {} : {
  CHANNEL_ALLOWED_HOSTS: channelAllowedHosts
}, empty(sweepSchedule) ? {} : {
  PAUSE_SWEEP_SCHEDULE: sweepSchedule
})
var smtpSettings = empty(smtpHost) ? {} : union({
  SMTP_HOST: smtpHost
  SMTP_PORT: smtpPort
  SMTP_FROM: smtpFrom
  SMTP_STARTTLS: smtpStartTls ? 'true' : 'false'
}, empty(smtpUsername) ? {} : {
  SMTP_USERNAME: smtpUsername
})

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov applies its checks of a web app's configuration to every sites/config resource; these
  // properties are app settings, and the site resource above is what those checks are about.
  //checkov:skip=CKV_AZURE_13:sign-in is sign-in.bicep's (optional by design: ADF calls with a function key, the links are credentials).
  //checkov:skip=CKV_AZURE_63:HTTP logs are a Windows/App Service plan feature; the Functions host sends requests to Application Insights.
  //checkov:skip=CKV_AZURE_65:detailed error pages are an IIS feature; not applicable to a Linux Function App.
  //checkov:skip=CKV_AZURE_66:failed request tracing is an IIS feature; not applicable to a Linux Function App.
  //checkov:skip=CKV_AZURE_80:a Python app; no .NET Framework.
  //checkov:skip=CKV_AZURE_88:Azure Files mounts are not used (and not offered on Flex Consumption); the app keeps its data in tables.
  //checkov:skip=CKV_AZURE_222:the same as on the site: the app is reached over the internet.
  parent: site
  name: 'appsettings'
  // The Key Vault references first, so that a channel named like a setting of its own cannot replace it.
  properties: union(secretSettings, storageSettings, telemetrySettings, appSettingsCore, optionalSettings, smtpSettings)
  dependsOn: [
    signIn
  ]
}

output name string = site.name
output url string = 'https://${site.properties.defaultHostName}'
