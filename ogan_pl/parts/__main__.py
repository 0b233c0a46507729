"""`python -m ogan_pl.parts`: the name the parts listing had before it became `ogan-parts`."""
from ogan_pl.tools.list_parts import main

if __name__ == "__main__":
    main()
