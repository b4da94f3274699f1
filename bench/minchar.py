"""The min-char-rnn workload (same as ``fastrnn bench minchar``): see fastrnn/bench/minchar.py.

    python bench/minchar.py --chars 50000 --repeat 3
"""
from fastrnn.bench.minchar import main

if __name__ == "__main__":
    main()
