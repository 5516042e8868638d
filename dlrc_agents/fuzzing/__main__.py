"""``python -m dlrc_agents.fuzzing``: the campaign's command line (:func:`.campaign.main`)."""

from .campaign import main

raise SystemExit(main())
