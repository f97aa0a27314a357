"""Reporting: the report (Markdown and one HTML page, `report`, templates/), its charts (`charts`) and the notification
(`notify`)."""
