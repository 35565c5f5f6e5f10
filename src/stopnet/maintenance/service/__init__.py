"""Maintenance logic, called by ``stopnet.maintenance.cli`` and ``stopnet.maintenance.api``.

:mod:`~stopnet.maintenance.service.backup` makes and restores backups of a whole installation;
:mod:`~stopnet.maintenance.service.purge` applies each operation's retention policy to personal data.
"""
