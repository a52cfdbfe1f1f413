#include "model/extension.h"

#include <gtest/gtest.h>

#include "base/strings.h"

namespace dspool {
namespace {

// The sample's extension (reference/azure-dsvm/dsvm-vmss-cluster.json), its
// expression evaluated.
Json Sample() {
  return Json::parse(R"([{"name": "filesextension",
    "properties": {"publisher": "Microsoft.Azure.Extensions", "type": "CustomScript",
                   "typeHandlerVersion": "2.0", "autoUpgradeMinorVersion": true,
                   "settings": {"fileUris": ["https://raw.githubusercontent.com/Azure/DataScienceVM/master/Extensions/General/mountazurefiles.sh"],
                                "commandToExecute": "bash mountazurefiles.sh acct KEY share /mnt/s dsvmuser"}}}])");
}

std::string ErrorOf(const Json& json) {
  auto parsed = ParseExtensions(json, "extensions");
  EXPECT_FALSE(parsed.ok());
  if (parsed.ok()) return "";
  EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
  return parsed.status().message();
}

TEST(ExtensionTest, TheSamplesExtensionParsesAndNamesItsFileAsAzureDoes) {
  auto parsed = ParseExtensions(Sample(), "extensions");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->size(), 1u);
  const ExtensionSpec& e = (*parsed)[0];
  EXPECT_EQ(e.name, "filesextension");
  EXPECT_TRUE(e.auto_upgrade_minor_version);
  EXPECT_EQ(e.FileNames(), std::vector<std::string>{"mountazurefiles.sh"});
  EXPECT_EQ(e.CommandText(), "bash mountazurefiles.sh acct KEY share /mnt/s dsvmuser");
  EXPECT_EQ(ExtensionsToJson(*parsed, Secrets::kInclude), Sample());
  EXPECT_EQ(*ParseExtensions(ExtensionsToJson(*parsed, Secrets::kInclude), "extensions"), *parsed);
}

TEST(ExtensionTest, ProtectedSettingsAreSecureInAnswersOnly) {
  Json j = Sample();
  j[0]["properties"]["settings"].erase("commandToExecute");
  j[0]["properties"]["protectedSettings"] = {{"commandToExecute", "bash x.sh SECRET"}};
  auto parsed = ParseExtensions(j, "extensions");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ((*parsed)[0].CommandText(), "bash x.sh SECRET");
  EXPECT_EQ(ExtensionsToJson(*parsed, Secrets::kRedact)[0]["properties"]["protectedSettings"], "[secure]");
  EXPECT_EQ(ExtensionsToJson(*parsed, Secrets::kRedact).dump().find("SECRET"), std::string::npos);
  EXPECT_EQ(ExtensionsToJson(*parsed, Secrets::kInclude), j);
}

TEST(ExtensionTest, AScriptIsBase64AndRunsDecoded) {
  Json j = Sample();
  j[0]["properties"]["settings"].erase("commandToExecute");
  j[0]["properties"]["settings"]["script"] = Base64Encode("#!/bin/sh\necho hi\n");
  auto parsed = ParseExtensions(j, "extensions");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ((*parsed)[0].CommandText(), "#!/bin/sh\necho hi\n");

  j[0]["properties"]["settings"]["script"] = "not base64!";
  EXPECT_EQ(ErrorOf(j), "extensions[0].properties.settings.script: must be base64");
  j[0]["properties"]["settings"]["script"] = Base64Encode(std::string("\x1f\x8b\x08\x00", 4));
  EXPECT_NE(ErrorOf(j).find("settings.script: a gzip-compressed script is not run here"), std::string::npos);
}

TEST(ExtensionTest, EveryBadFieldIsNamed) {
  Json j = Sample();
  j[0]["properties"]["publisher"] = "Microsoft.Azure.Monitor";
  EXPECT_NE(ErrorOf(j).find("extensions[0].properties.type: 'Microsoft.Azure.Monitor.CustomScript' is not run on this host"),
            std::string::npos);
  j = Sample();
  j[0]["properties"]["typeHandlerVersion"] = "1.5";
  EXPECT_NE(ErrorOf(j).find("extensions[0].properties.typeHandlerVersion: '1.5': CustomScript is version 2.x"),
            std::string::npos);
  j = Sample();
  j[0]["properties"]["settings"]["script"] = Base64Encode("echo");
  EXPECT_EQ(ErrorOf(j), "extensions[0].properties: give exactly one of commandToExecute and script, in settings or "
                        "protectedSettings (2 given)");
  j = Sample();
  j[0]["properties"]["settings"].erase("commandToExecute");
  EXPECT_NE(ErrorOf(j).find("(0 given)"), std::string::npos);
  j = Sample();
  j[0]["properties"]["settings"]["fileUris"] = {"../scripts/mount.sh"};
  EXPECT_EQ(ErrorOf(j), "extensions[0].properties.settings.fileUris[0]: '../scripts/mount.sh' is not an http or https "
                        "URL, nor a path relative to the template (segments of letters, digits, '-', '_' and '.'; no "
                        "'..')");
  j[0]["properties"]["settings"]["fileUris"] = {"http://mirror.internal/dir/"};
  EXPECT_NE(ErrorOf(j).find("settings.fileUris[0]: 'http://mirror.internal/dir/' names no file"), std::string::npos);
  j[0]["properties"]["settings"]["fileUris"] = {"http://a/x.sh", "http://b/y/x.sh?sas=1"};
  EXPECT_NE(ErrorOf(j).find("two fileUris name the file 'x.sh'"), std::string::npos);
  j = Sample();
  j[0]["properties"]["settings"]["comandToExecute"] = "typo";
  EXPECT_EQ(ErrorOf(j), "extensions[0].properties.settings.comandToExecute: unknown field");
  j = Sample();
  j[0]["properties"]["protectedSettings"] = {{"storageAccountKey", "k"}};
  EXPECT_NE(ErrorOf(j).find("protectedSettings.storageAccountKey: fileUris in Azure blob storage cannot be read here"),
            std::string::npos);
  j = Sample();
  j.push_back(j[0]);
  j[1]["name"] = "FilesExtension";
  EXPECT_EQ(ErrorOf(j), "extensions[1].name: 'FilesExtension' is the name of an earlier extension");
  j[1]["name"] = "second";
  EXPECT_EQ(ErrorOf(j), "extensions[1]: a second CustomScript; as on Azure, an instance runs one extension of each type");
  j = Sample();
  j[0]["name"] = "../x";
  EXPECT_NE(ErrorOf(j).find("extensions[0].name: '../x' must be"), std::string::npos);
}

TEST(ExtensionTest, AFileUriMayBeAPathRelativeToTheTemplate) {
  EXPECT_TRUE(IsRelativeFileUri("mount.sh"));
  EXPECT_TRUE(IsRelativeFileUri("scripts/v1.2/mount_azure-files.sh"));
  for (const char* bad : {"", "/etc/passwd", "scripts/", "a//b.sh", "./a.sh", "a/../b.sh", "..", "a b.sh",
                          "file:///x.sh", "https://a/x.sh", "scripts\\x.sh"}) {
    EXPECT_FALSE(IsRelativeFileUri(bad)) << bad;
  }
  EXPECT_FALSE(IsRelativeFileUri(std::string(65, 'a')));  // a file's name: 64 at most
  EXPECT_TRUE(IsRelativeFileUri(std::string(100, 'd') + "/a.sh"));
  EXPECT_FALSE(IsRelativeFileUri(std::string(1020, 'd') + "/a.sh"));

  Json j = Sample();
  j[0]["properties"]["settings"]["fileUris"] = {"scripts/mount.sh"};
  auto parsed = ParseExtensions(j, "extensions");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ((*parsed)[0].FileNames(), std::vector<std::string>{"mount.sh"});
  EXPECT_EQ(MissingArtifacts(*parsed, {}), std::vector<std::string>{"scripts/mount.sh"});
  EXPECT_TRUE(MissingArtifacts(*parsed, {{"scripts/mount.sh", "x"}}).empty());

  EXPECT_EQ(ResolveNextTo("https://h.example/t/azuredeploy.json", "scripts/mount.sh"),
            "https://h.example/t/scripts/mount.sh");
  EXPECT_EQ(ResolveNextTo("http://h.example/azuredeploy.json?sv=1&sig=2#frag", "mount.sh"),
            "http://h.example/mount.sh?sv=1&sig=2");
}

TEST(ExtensionTest, TheOlderCustomScriptForLinuxTakesACommandOnly) {
  Json j = Json::parse(R"([{"name": "old", "properties": {"publisher": "Microsoft.OSTCExtensions",
      "type": "CustomScriptForLinux", "typeHandlerVersion": "1.5",
      "settings": {"fileUris": ["http://127.0.0.1/s.sh"], "enableInternalDNSCheck": false},
      "protectedSettings": {"commandToExecute": "sh s.sh"}}}])");
  auto parsed = ParseExtensions(j, "extensions");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ((*parsed)[0].CommandText(), "sh s.sh");
  j[0]["properties"]["protectedSettings"] = {{"script", Base64Encode("echo")}};
  EXPECT_NE(ErrorOf(j).find("protectedSettings.script: CustomScriptForLinux takes commandToExecute only"),
            std::string::npos);
}

TEST(ExtensionTest, AnAgentsListCarriesTheFilesAndIsCheckedAsUntrusted) {
  auto specs = ParseExtensions(Sample(), "extensions");
  ASSERT_TRUE(specs.ok());
  AgentProvisioning list{Base64Encode("#!/bin/sh\necho first\n"),
                         {{(*specs)[0], {{"mountazurefiles.sh", std::string("#!/bin/bash\n\0\xff", 14)}}}}};
  auto back = ParseAgentProvisioning(AgentProvisioningToJson(list));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->custom_data, list.custom_data);
  ASSERT_EQ(back->extensions.size(), 1u);
  EXPECT_EQ(back->extensions[0].spec, (*specs)[0]);
  EXPECT_EQ(back->extensions[0].files, list.extensions[0].files);

  Json bad = AgentProvisioningToJson(list);
  bad["extensions"][0]["files"][0]["name"] = "../../etc/passwd";
  EXPECT_NE(ParseAgentProvisioning(bad).status().message().find("expected 'mountazurefiles.sh'"), std::string::npos);
  bad = AgentProvisioningToJson(list);
  bad["extensions"][0]["files"] = Json::array();
  EXPECT_NE(ParseAgentProvisioning(bad).status().message().find("expected one file for each of the 1 fileUris"),
            std::string::npos);
  bad = AgentProvisioningToJson(list);
  bad["customData"] = Base64Encode("#cloud-config\npackages: [git]\n");
  EXPECT_EQ(ParseAgentProvisioning(bad).status().message(),
            "customData: #cloud-config is not run here; give a shell script starting with #!");
}

TEST(ExtensionTest, StatusesRoundTripAndRefuseUnknownStates) {
  ExtensionStatus s{"filesextension", ExtensionState::kFailed, "Enable failed: exit status 1"};
  EXPECT_EQ(*ParseExtensionStatus(ExtensionStatusToJson(s), "extensions[0]"), s);
  Json bad = ExtensionStatusToJson(s);
  bad["state"] = "Done";
  EXPECT_EQ(ParseExtensionStatus(bad, "extensions[0]").status().message(),
            "extensions[0].state: 'Done' is not Transitioning, Succeeded or Failed");
}

TEST(ExtensionTest, CustomDataIsAShellScriptAndItsNameIsReserved) {
  EXPECT_EQ(*DecodeCustomData(Base64Encode("#!/bin/bash\necho hi\n"), "customData"), "#!/bin/bash\necho hi\n");
  EXPECT_EQ(DecodeCustomData("@@", "osProfile.customData").status().message(), "osProfile.customData: must be base64");
  EXPECT_NE(DecodeCustomData(Base64Encode("echo no shebang"), "customData").status().message().find(
                "must be a shell script starting with #!"),
            std::string::npos);
  EXPECT_NE(DecodeCustomData(std::string(kMaxCustomDataBase64 + 4, 'A'), "customData").status().message().find(
                "at most 87380"),
            std::string::npos);
  Json j = Sample();
  j[0]["name"] = "CustomData";
  EXPECT_EQ(ErrorOf(j), "extensions[0].name: 'CustomData' is the name of the pool's customData script");
}

}  // namespace
}  // namespace dspool
