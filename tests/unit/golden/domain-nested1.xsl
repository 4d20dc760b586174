<?xml version="1.0"?>
<!-- Rendered by ringzero: adjusts the domain XML pulumi-libvirt generates. -->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:qemu="http://libvirt.org/schemas/domain/qemu/1.0">
  <xsl:output method="xml" indent="yes"/>
  <xsl:template match="@*|node()">
    <xsl:copy><xsl:apply-templates select="@*|node()"/></xsl:copy>
  </xsl:template>
  <!-- Headless: no display, no SPICE channel (pulumi-libvirt always adds them). -->
  <xsl:template match="/domain/devices/graphics"/>
  <xsl:template match="/domain/devices/video"/>
  <xsl:template match="/domain/devices/channel[@type='spicevmc']"/>
  <!-- The serial console is a pty whose output virtlogd appends to a log file on the host
       (a type='file' console fails to start when the file does not exist yet). -->
  <xsl:template match="/domain/devices/serial"/>
  <xsl:template match="/domain/devices/console"/>
  <xsl:template match="/domain/devices">
    <xsl:copy>
      <xsl:apply-templates select="@*|node()"/>
      <serial type="pty"><log file="/var/log/libvirt/qemu/nested1-console.log" append="on"/><target port="0"/></serial>
      <console type="pty"><log file="/var/log/libvirt/qemu/nested1-console.log" append="on"/><target type="serial" port="0"/></console>
    </xsl:copy>
  </xsl:template>
  <!-- ACPI, so that a memory change can shut the guest down cleanly. -->
  <xsl:template match="/domain/features[not(acpi)]">
    <xsl:copy><xsl:apply-templates select="@*|node()"/><acpi/></xsl:copy>
  </xsl:template>
  <xsl:template match="/domain">
    <xsl:copy>
      <xsl:apply-templates select="@*|node()"/>
      <xsl:if test="not(features)"><features><acpi/></features></xsl:if>
    </xsl:copy>
  </xsl:template>
</xsl:stylesheet>
