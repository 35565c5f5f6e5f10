"""Sharing among the participants of an operation: the live feed (Server-Sent Events fed by a
transactional outbox), alerts with acknowledgements, message threads with mentions, read state,
attachments and e-mail notifications. See docs/live-feed.md.

Modules: ``outbox`` (write events in the caller's transaction), ``broker`` (fan-out in a process and
wake-up across processes), ``feed`` (the SSE stream: visibility, filters, replay), ``service``,
``schemas``, ``api``, ``views``, ``mail``.
"""
