from fsevents.cli import main

raise SystemExit(main())
