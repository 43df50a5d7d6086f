"""The web dashboard: server-rendered pages of runs, their DAGs, logs and approvals, served
by the controller at ``/`` and by ``sparkwing dashboard`` for one person."""
