from realsyn.jobs.cli import main

raise SystemExit(main())
