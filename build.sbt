// The JVM side in one place. `sbt assembly` builds the dependency jar that
// spark-submit needs on a plain Spark cluster (Databricks ships Delta itself).
// The Makefile and a test read these versions; keep them in step with requirements.txt.
val sparkVersion = "4.2.0"
val deltaVersion = "4.4.0"
val rapidsVersion = "25.10.0"
// Hadoop's S3A connector, for a Spark without one (local, standalone): the Hadoop of Spark's
// own jars, and the AWS SDK and analytics accelerator that hadoop-aws declares. Fetched beside
// Delta's jars (`make s3-jars`), never put in the assembly: EMR and Databricks bring their own.
val hadoopAwsVersion = "3.5.0"
val awsSdkVersion = "2.35.4"
val analyticsAcceleratorVersion = "1.3.1"

// Spark 4.2's own Scala; only used to pick _2.13 artifacts (there are no sources here).
ThisBuild / scalaVersion := "2.13.18"

val sparkMinor = sparkVersion.split('.').take(2).mkString(".")

// The build's root itself (else sbt adds a root that aggregates it), with its outputs
// kept under jvm/ so the repository root only gains sbt's own project/ folders.
lazy val root = (project in file("."))
  .settings(
    name := "realsyn-deps",
    version := "0.1.0",
    target := baseDirectory.value / "jvm" / "target",
    // Spark (and all it brings) is the cluster's: `provided`, never in the jar.
    libraryDependencies ++= Seq(
      "org.apache.spark" %% "spark-sql" % sparkVersion % "provided",
      "org.apache.spark" %% "spark-hive" % sparkVersion % "provided", // a Spark distribution's Hive jars
      "io.delta" % s"delta-spark_${sparkMinor}_2.13" % deltaVersion,
      "io.delta" % "delta-storage" % deltaVersion
    ),
    // Delta's transitive deps that Spark already ships (Hadoop, Parquet, Jackson...) resolve
    // into Runtime as well; leave out every module the provided Spark classpath has, so the
    // cluster's versions win and the jar holds only what a plain Spark lacks.
    assembly / assemblyExcludedJars := {
      val onSpark = update.value.configuration(Provided).toSeq
        .flatMap(_.modules).map(m => (m.module.organization, m.module.name)).toSet
      (assembly / fullClasspath).value.filter { f =>
        f.get(moduleID.key).exists(m => onSpark((m.organization, m.name)))
      }
    },
    assemblyPackageScala / assembleArtifact := false,
    // session.py reads these to refuse a jar left over from other versions.
    assembly / packageOptions += Package.ManifestAttributes(
      "Realsyn-Spark-Version" -> sparkVersion, "Realsyn-Delta-Version" -> deltaVersion),
    assembly / assemblyJarName := "realsyn-deps-assembly.jar",
    // A stable path the Makefile, session.py and the tests can name.
    assembly / assemblyOutputPath := target.value / (assembly / assemblyJarName).value,
    assembly / assemblyMergeStrategy := {
      // DataSourceRegister, LogStoreProvider...: every jar's registrations, merged.
      case PathList("META-INF", "services", _*) => MergeStrategy.concat
      // Notices of the code Delta's kernel shades: kept (each name is distinct).
      case PathList("META-INF", f) if f.startsWith("LICENSE") || f.startsWith("NOTICE") => MergeStrategy.first
      case PathList("META-INF", _*) => MergeStrategy.discard
      case _ => MergeStrategy.first
    }
  )
