"""The domain core: models, sessions and the product rules as plain functions.

Nothing here imports Flask, huey, smtplib or the other Pawpost parts; they import this.
"""
