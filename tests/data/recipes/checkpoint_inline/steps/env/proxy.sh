# <%= @context_name %> context: no proxy for local addresses
export no_proxy=localhost,127.0.0.1
