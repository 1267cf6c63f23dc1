"""Alert templates and message text: template folders, rendering per channel, SMS segment rules."""
