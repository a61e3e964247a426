from bench.faultlab.cli import main

raise SystemExit(main())
