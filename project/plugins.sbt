// Pinned; resolved from Maven Central (the _2.12_1.0 cross name) like everything else.
addSbtPlugin("com.eed3si9n" % "sbt-assembly" % "2.3.1")
