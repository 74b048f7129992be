// The app's secrets in its vault, and the app settings that reference them. App Service resolves a
// reference with the app's identity (keyVaultReferenceIdentity, function.bicep); the app sees the value.
param vaultName string
@secure()
param smtpPassword string
@secure()
param channelWebhooks object

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

module smtp 'secret.bicep' = if (!empty(smtpPassword)) {
  name: 'secret-smtp-password'
  params: {
    vaultName: vaultName
    name: 'smtp-password'
    value: smtpPassword
  }
}

// One secret per channel, named channel-<name> (channel names are a-z, 0-9 and -, as Key Vault's are).
module channels 'secret.bicep' = [for channel in items(channelWebhooks): {
  name: 'secret-channel-${channel.key}'
  params: {
    vaultName: vaultName
    name: 'channel-${channel.key}'
    value: channel.value
  }
}]

// References without a version: App Service follows the latest version, so a rotated secret needs no deploy.
var smtpSettings = empty(smtpPassword) ? {} : {
  SMTP_PASSWORD: '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/smtp-password)'
}
// CHANNEL_<NAME>, upper case with - as _ (shared/notify/channels.py). Built as JSON text because the
// parser checkov uses has no lambdas (toObject); names of a-z, 0-9 and - need no escaping.
var channelPairs = [for channel in items(channelWebhooks): '"CHANNEL_${toUpper(replace(channel.key, '-', '_'))}": "@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/channel-${channel.key})"']
var channelSettings = json('{${join(channelPairs, ',')}}')

output appSettings object = union(smtpSettings, channelSettings)
