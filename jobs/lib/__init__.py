"""Driver-side building blocks of the stages (one stage's plan, table or Spark expression each); stages import them, they import no stage."""
