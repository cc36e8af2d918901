"""A team on one project: people sign in with a link, pull tasks from a shared queue, a lead watches.

The Ground Truth emulator hands tasks to workers one at a time (``Worker.work``). For a team, its
workteam holds *seats* instead of people: each seat puts its task in a queue that any person may
pull from whose role fits and who has not answered (or, for an audit, labeled) that object; the
answer goes back in that person's Ground Truth identity. People reach the queue through one
HTTP server, by a sign-in link each, and the lead has a page of their own.

==============  ==========================================================================
``people``      the roster (``team.json``), the project secret, identities, sign-in tokens
``sessions``    sessions, their cookie, CSRF tokens
``seats``       ``Seat`` (the emulator's worker), ``TeamQueue`` (offers, claims, counts)
``ledger``      who answered or returned which object, across restarts (SQLite)
``server``      ``TeamServer``: the routes, and what each request must pass
``pages``       a person's pages (home, the bar over a task, sign-in, refusals)
``lead``        the lead's page (progress, who does what, needs attention, report, Stop)
==============  ==========================================================================

Wiring, as the runtime does it::

    roster = Roster(project)
    queue = TeamQueue(roster, lambda: running_jobs(list(emulator.jobs.values())),
                      ledger=Ledger(project / LEDGER_FILE))
    seats = make_seats(queue, n)                 # the workteam's workers: {arn: seats}
    server = TeamServer(roster, queue, read_object=s3_reader(s3), ...).start()
"""
