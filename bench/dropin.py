"""The drop-ins per call against the tutorials (same as ``fastrnn bench dropin``): see fastrnn/bench/dropin.py.

    python bench/dropin.py --backends c --repeat 7
"""
from fastrnn.bench.dropin import main

if __name__ == "__main__":
    main()
