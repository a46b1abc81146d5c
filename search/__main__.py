from .cli import main

main(prog_name="amharic-search")
