def greet(name):
    # TODO: say it in the user's language
    return f"hello {name}"
