// The JVM side in one place. `sbt assembly` builds the dependency jar that
// spark-submit needs on a plain Spark cluster (Databricks ships Delta itself).
// The Makefile and a test read these versions; keep them in step with requirements.txt.
val sparkVersion = "4.2.0"
val deltaVersion = "4.4.0"
val rapidsVersion = "25.10.0"

ThisBuild / scalaVersion := "2.13.17"

lazy val root = (project in file("jvm"))
  .settings(
    name := "realsyn-deps",
    version := "0.1.0",
    libraryDependencies ++= Seq(
      "org.apache.spark" %% "spark-sql" % sparkVersion % "provided",
      "io.delta" % s"delta-spark_${sparkVersion.split('.').take(2).mkString(".")}_2.13" % deltaVersion,
      "io.delta" % "delta-storage" % deltaVersion
    ),
    assembly / assemblyMergeStrategy := {
      case PathList("META-INF", "services", _*) => MergeStrategy.concat
      case PathList("META-INF", _*) => MergeStrategy.discard
      case _ => MergeStrategy.first
    }
  )
