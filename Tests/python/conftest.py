import os
import sys

# The binding is used from the source tree; the library from DIFFATTN_LIBRARY or .build/release.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "bindings", "python"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
