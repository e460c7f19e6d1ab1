"""Outbound mail: the huey queue and its tasks, who gets what, rendering and transports.

The one door for the other parts is `outbound.notify.message_posted(message_id)`, called
after their commit; every process calls `outbound.queue.configure_queue(settings)` once.
"""
