"""What the app calls out to: Azure Data Factory (and its credentials) and WebHook callbacks."""
