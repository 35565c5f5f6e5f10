"""Operations: code name, phases, scope, participants and contact points."""
