// App Service Authentication with Microsoft Entra ID, in front of the approval links and the console
// (README "Sign-in"). Deployed only when an app registration's client id is given (function.bicep).
//
// Unauthenticated requests are let through: Data Factory calls /api/pause with a function key, and
// the app itself sends a person to /.auth/login/aad when a page needs them. With no client secret,
// Entra ID signs people in with an ID token: the registration must allow ID tokens and list
// https://<host>/.auth/login/aad/callback as a web redirect URI.
param siteName string
param clientId string

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: siteName
}

resource auth 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov applies its checks of a web app's configuration to every sites/config resource; this one
  // is the sign-in alone (function.bicep's site resource is what the others are about).
  //checkov:skip=CKV_AZURE_13:this is App Service Authentication (authsettingsV2, platform.enabled: true); the check reads the older authsettings shape.
  //checkov:skip=CKV_AZURE_63:HTTP logs are a Windows/App Service plan feature; the Functions host sends requests to Application Insights.
  //checkov:skip=CKV_AZURE_65:detailed error pages are an IIS feature; not applicable to a Linux Function App.
  //checkov:skip=CKV_AZURE_66:failed request tracing is an IIS feature; not applicable to a Linux Function App.
  //checkov:skip=CKV_AZURE_80:a Python app; no .NET Framework.
  //checkov:skip=CKV_AZURE_88:Azure Files mounts are not used (and not offered on Flex Consumption); the app keeps its data in tables.
  //checkov:skip=CKV_AZURE_222:the app is reached over the internet (see the site resource in function.bicep).
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: false
      unauthenticatedClientAction: 'AllowAnonymous'
    }
    httpSettings: {
      requireHttps: true
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: clientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
        }
      }
    }
  }
}
