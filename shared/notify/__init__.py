"""Telling people: one message model (message.py) rendered for Teams (teams.py) and Slack (slack.py),
posted to the channels an app setting names (channels.py); email (email.py)."""
