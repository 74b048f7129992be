#!/bin/sh
# azd postdeploy hook: the function key Data Factory sends (x-functions-key) is a named host key of
# the app; this makes sure it exists and puts its current value in the function-key vault, where a
# factory's Web activity reads it with the factory's managed identity (main.bicep, output ADF_WIRING).
#
# A host key cannot be set while the template is deployed (a Flex Consumption app has no running host
# before its code is deployed), hence a hook after `azd deploy`. The key is made once and kept: a
# deploy does not rotate it. To rotate: az functionapp keys delete ... --key-name <name>, then azd deploy.
#
# Not yet tried against Azure. Needs the Azure CLI (az), signed in as the deployer, who holds Key Vault
# Secrets Officer on the function-key vault only (infra/app/access.bicep, from AZURE_PRINCIPAL_ID).
# azd passes the template's outputs as environment variables.
set -eu

: "${AZURE_RESOURCE_GROUP:?run by azd after provisioning}"
: "${AZURE_FUNCTION_NAME:?run by azd after provisioning}"
: "${FUNCTION_KEY_NAME:?run by azd after provisioning}"
: "${FUNCTION_KEY_VAULT_NAME:?run by azd after provisioning}"
: "${FUNCTION_KEY_SECRET_NAME:?run by azd after provisioning}"

if ! command -v az >/dev/null 2>&1; then
  echo "store-function-key: the Azure CLI (az) is needed to store the function key for Data Factory." >&2
  exit 1
fi

# The host may still be starting right after a deploy, and a new role assignment takes a few minutes
# to reach Key Vault: each step is tried a few times.
attempt() {
  tries=0
  until "$@"; do
    tries=$((tries + 1))
    if [ "$tries" -ge 6 ]; then
      return 1
    fi
    echo "store-function-key: retrying in 20 s" >&2
    sleep 20
  done
}

key_file=$(mktemp)  # readable by this user only
trap 'rm -f "$key_file"' EXIT

read_key() {
  az functionapp keys list -g "$AZURE_RESOURCE_GROUP" -n "$AZURE_FUNCTION_NAME" \
    --query "functionKeys.\"$FUNCTION_KEY_NAME\"" -o tsv > "$key_file"
}

make_key() {
  # Without --key-value, the platform generates the key.
  az functionapp keys set -g "$AZURE_RESOURCE_GROUP" -n "$AZURE_FUNCTION_NAME" \
    --key-type functionKeys --key-name "$FUNCTION_KEY_NAME" --query value -o tsv > "$key_file"
}

store_key() {
  # From a file, so that the key never appears on a command line (visible to other users in ps).
  az keyvault secret set --vault-name "$FUNCTION_KEY_VAULT_NAME" --name "$FUNCTION_KEY_SECRET_NAME" \
    --file "$key_file" --encoding utf-8 --content-type "function key of $AZURE_FUNCTION_NAME" --output none
}

attempt read_key
if [ ! -s "$key_file" ] || [ "$(cat "$key_file")" = "None" ]; then
  attempt make_key
fi
# az prints a newline after the value; the secret must be the key alone.
key=$(cat "$key_file")
printf '%s' "$key" > "$key_file"
attempt store_key
echo "store-function-key: host key '$FUNCTION_KEY_NAME' is in Key Vault $FUNCTION_KEY_VAULT_NAME as secret $FUNCTION_KEY_SECRET_NAME."
