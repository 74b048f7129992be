"""Telling people: email now; Teams and Slack next."""
