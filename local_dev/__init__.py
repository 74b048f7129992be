"""Local development tools: the Functions host stand-in, the ADF stand-in and Azurite.

Nothing here is deployed to Azure; it lets `make run` and `make test` work on a plain laptop.
"""
