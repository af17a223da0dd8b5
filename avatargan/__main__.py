from avatargan.cli import main

raise SystemExit(main())
