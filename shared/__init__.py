"""What the pause and restart functions share: settings, tokens, storage, ADF and pages.

Nothing in this package except `web` imports `azure.functions`, so the logic is testable
without a Functions host.
"""
